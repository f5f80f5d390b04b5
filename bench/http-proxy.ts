/**
 * The http-proxy contender: the `http-proxy` npm package with a keep-alive agent
 * (its default is a new upstream connection per request), the three PAVE headers
 * set in `proxyReq`. No logging.
 *
 *   node http-proxy.js '{"port":1234,"upstream":"http://127.0.0.1:5678"}'
 */
import { Agent, createServer } from 'node:http'
import httpProxy from 'http-proxy'
import { createSigner } from './lib/signing.js'

interface HttpProxyOptions {
  port: number
  upstream: string
}

const options = JSON.parse(process.argv[2] ?? '{}') as HttpProxyOptions
const agent = new Agent({ keepAlive: true, maxSockets: 128, keepAliveMsecs: 60_000 })
const sign = createSigner()
const proxy = httpProxy.createProxyServer({ target: options.upstream, agent, xfwd: false })

proxy.on('proxyReq', (proxyReq) => {
  const signed = sign()
  proxyReq.setHeader('api-key', signed['api-key'])
  proxyReq.setHeader('api-timestamp', signed['api-timestamp'])
  proxyReq.setHeader('api-token', signed['api-token'])
})
proxy.on('error', (error, _req, res) => {
  if ('writeHead' in res && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ message: 'upstream failed', code: (error as NodeJS.ErrnoException).code }))
  } else {
    res.destroy()
  }
})

const server = createServer((req, res) => proxy.web(req, res))
server.keepAliveTimeout = 75_000
server.requestTimeout = 0
server.listen(options.port, '127.0.0.1')
process.on('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  agent.destroy()
})
