/**
 * The Fastify floor: what a Fastify application that proxies can cost at least.
 * Fastify 5, one catch-all route, `reply.hijack()`, an undici Pool's `stream()`
 * writing straight into the caller's response, the three PAVE headers added, no
 * logging, no hooks. Beside the node:http floor it shows what Fastify itself costs.
 *
 *   node fastify-floor.js '{"port":1234,"upstream":"http://127.0.0.1:5678"}'
 */
import Fastify from 'fastify'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { Pool } from 'undici'
import { createSigner } from './lib/signing.js'

interface FastifyFloorOptions {
  port: number
  upstream: string
}

const options = JSON.parse(process.argv[2] ?? '{}') as FastifyFloorOptions
const pool = new Pool(options.upstream, { connections: 128, keepAliveTimeout: 60_000 })
const sign = createSigner()

/** Request headers never forwarded: hop-by-hop ones and caller-sent PAVE credentials. */
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'host', 'transfer-encoding', 'api-key', 'api-timestamp', 'api-token'])
/** Response headers never forwarded (hop-by-hop). */
const DROPPED_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding'])

const app = Fastify({ logger: false, keepAliveTimeout: 75_000, requestTimeout: 0 })
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
app.route({
  method: ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'],
  url: '/*',
  exposeHeadRoute: false,
  handler: (request, reply) => {
    reply.hijack()
    const req = request.raw
    const res = reply.raw
    const headers: IncomingHttpHeaders = {}
    for (const name in req.headers) {
      if (!DROPPED.has(name)) headers[name] = req.headers[name]
    }
    Object.assign(headers, sign())
    pool.stream({
      path: req.url ?? '/',
      method: req.method as 'GET',
      headers,
      body: (request.body as NodeJS.ReadableStream | undefined) ?? null
    } as Parameters<Pool['stream']>[0], ({ statusCode, headers: upstreamHeaders }) => {
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
  }
})
await app.listen({ port: options.port, host: '127.0.0.1' })
process.on('SIGTERM', () => {
  app.server.closeAllConnections()
  void app.close()
  void pool.close()
})
