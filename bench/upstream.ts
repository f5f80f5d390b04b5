/**
 * The bench's Node upstream (used when nginx is absent, and always for the checks,
 * the streamed transfers and the TLS upstream of the sidecar-gain run).
 *
 *   node upstream.js '{"port":1234,"tls":{"cert":"…pem","key":"…pem"},"requireSignature":true}'
 *
 * - `GET /bench/verify`: 200 when the request carries exactly one valid set of PAVE
 *   headers, else 403 with the problems;
 * - `POST /bench/sink`: reads and drops the body, answers how many bytes came;
 * - `GET /bench/source?bytes=N`: streams N bytes (content-length set);
 * - `GET /bench/stats`: connections accepted and requests served so far;
 * - anything else: the fixed session JSON (403 when `requireSignature` and the
 *   signature is wrong, as PAVE would).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { readFileSync } from 'node:fs'
import { checkSignature } from './lib/signing.js'
import { FORBIDDEN_BODY, SESSION_BODY, SINK_PATH, SOURCE_PATH, STATS_PATH, VERIFY_PATH } from './lib/fixture.js'

interface UpstreamOptions {
  port: number
  tls?: { cert: string, key: string }
  requireSignature?: boolean
}

const options = JSON.parse(process.argv[2] ?? '{}') as UpstreamOptions
const sessionBody = Buffer.from(SESSION_BODY)
const sessionHeaders = { 'content-type': 'application/json', 'content-length': String(sessionBody.length) }
const chunk = Buffer.alloc(64 * 1024, 'pave-bench ')

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

let connections = 0
let requests = 0

function handle (req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  requests++
  if (url === STATS_PATH) {
    req.resume()
    json(res, 200, { connections, requests })
    return
  }
  if (url.startsWith(VERIFY_PATH)) {
    req.resume()
    const problems = checkSignature(req.rawHeaders)
    json(res, problems.length === 0 ? 200 : 403, problems.length === 0 ? { ok: true } : { ok: false, problems })
    return
  }
  if (url.startsWith(SINK_PATH)) {
    const signed = checkSignature(req.rawHeaders).length === 0
    let received = 0
    req.on('data', (data: Buffer) => { received += data.length })
    req.on('end', () => json(res, 200, { received, signed }))
    return
  }
  if (url.startsWith(SOURCE_PATH)) {
    req.resume()
    const bytes = Number(new URL(url, 'http://upstream').searchParams.get('bytes') ?? 0)
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes), 'x-bench-signed': String(checkSignature(req.rawHeaders).length === 0) })
    let left = bytes
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left)
        left -= piece.length
        if (!res.write(piece)) {
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    pump()
    return
  }
  req.resume()
  if (options.requireSignature === true && checkSignature(req.rawHeaders).length > 0) {
    json(res, 403, FORBIDDEN_BODY)
    return
  }
  res.writeHead(200, sessionHeaders)
  res.end(sessionBody)
}

const server = options.tls !== undefined
  ? createHttpsServer({ cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) }, handle)
  : createHttpServer(handle)
server.on(options.tls !== undefined ? 'secureConnection' : 'connection', () => { connections++ })
// Keep idle keep-alive connections well beyond a bench round.
server.keepAliveTimeout = 75_000
server.headersTimeout = 80_000
server.requestTimeout = 0
server.listen(options.port, '127.0.0.1')
process.on('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
})
