/**
 * The floor: the least a Node signing proxy can do. node:http in, an undici Pool
 * out, the three PAVE headers added, bodies streamed both ways. No framework, no
 * logging, no limits, no metrics: the cheapest a Node proxy can be, to measure the
 * real thing against.
 *
 *   node floor.js '{"port":1234,"upstream":"http://127.0.0.1:5678"}'
 */
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import { Pool } from 'undici'
import { createSigner } from './lib/signing.js'

interface FloorOptions {
  port: number
  upstream: string
}

const options = JSON.parse(process.argv[2] ?? '{}') as FloorOptions
const pool = new Pool(options.upstream, { connections: 128, keepAliveTimeout: 60_000 })
const sign = createSigner()

/** Request headers never forwarded: hop-by-hop ones and caller-sent PAVE credentials. */
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'host', 'transfer-encoding', 'api-key', 'api-timestamp', 'api-token'])
/** Response headers never forwarded (hop-by-hop). */
const DROPPED_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding'])

const server = createServer((req, res) => {
  const headers: IncomingHttpHeaders = {}
  for (const name in req.headers) {
    if (!DROPPED.has(name)) headers[name] = req.headers[name]
  }
  Object.assign(headers, sign())
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.stream({
    path: req.url ?? '/',
    method: req.method as 'GET',
    headers,
    body: hasBody ? req : null
  }, ({ statusCode, headers: upstreamHeaders }) => {
    const out: OutgoingHttpHeaders = {}
    for (const name in upstreamHeaders) {
      if (!DROPPED_RESPONSE.has(name)) out[name] = upstreamHeaders[name]
    }
    res.writeHead(statusCode, out)
    return res
  }).catch((error: Error) => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ message: 'upstream failed', code: (error as NodeJS.ErrnoException).code }))
    } else {
      res.destroy(error)
    }
  })
})
server.keepAliveTimeout = 75_000
server.requestTimeout = 0
server.listen(options.port, '127.0.0.1')
process.on('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  void pool.close()
})
