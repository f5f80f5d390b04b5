import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

t.test('upstream refuses the connection → 502 with the proxy\'s JSON error', async (t) => {
  const port = await closedPort()
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${port}` })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  t.match(res.headers['content-type'], /^application\/json/)
  const body = await res.body.json() as { code: string, message: string }
  t.same(body, { code: 'PAVE_PROXY_UPSTREAM_UNREACHABLE', message: 'The PAVE API could not be reached, or closed the connection before answering.' })
  t.notMatch(JSON.stringify(body), String(port), 'no internal address in the message')
})

t.test('upstream never answers → 504 after the configured timeout, and the next call works', async (t) => {
  let hang = true
  const upstream = await startUpstream({
    handler: (_req, res) => {
      if (hang) return // never answer
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_TIMEOUT_MS: '300' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const started = Date.now()
  const res = await request(`${proxy.url}/v1/sessions/ABC`)
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 504)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_TIMEOUT')
  t.same(await res.body.json(), { code: 'PAVE_PROXY_UPSTREAM_TIMEOUT', message: 'The PAVE API did not answer in time.' })
  t.ok(elapsed >= 250 && elapsed < 5_000, `answered after ${elapsed} ms`)
  t.equal(upstream.received.length, 1, 'not retried')
  hang = false
  const next = await request(`${proxy.url}/v1/sessions/ABC`)
  t.equal(next.statusCode, 200)
  t.same(await next.body.json(), { ok: true })
})

t.test('upstream resets before answering → 502', async (t) => {
  const upstream = await startUpstream({ handler: (req) => { req.socket.destroy() } })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{"a":1}' })
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  await res.body.dump()
  t.ok(proxy.logs.some((l) => l.includes('upstream request failed') && l.includes('"code":"PAVE_PROXY_UPSTREAM_UNREACHABLE"')))
})

t.test('an upstream that stalls mid-body is cut after the idle timeout', async (t) => {
  const upstream = await startUpstream({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100' })
      res.write(Buffer.alloc(10))
      // then silence
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_IDLE_TIMEOUT_MS: '300' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/sessions/ABC/photos`)
  t.equal(res.statusCode, 200, 'headers were already forwarded')
  await t.rejects(res.body.arrayBuffer(), 'the truncated body ends in an error, not a hang')
})

t.test('a small body kept for a re-sign, upstream unreachable: 502, and the kept copy is let go without an error of its own', async (t) => {
  const port = await closedPort()
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${port}`, env: { PAVE_CLOCK_SKEW_CORRECTION: 'true' } })
  t.teardown(() => proxy.close())
  for (const attempt of [1, 2]) {
    const res = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{"kept":true}', headers: { 'content-type': 'application/json' } })
    t.equal(res.statusCode, 502, `attempt ${attempt}`)
    t.same(await res.body.json(), { code: 'PAVE_PROXY_UPSTREAM_UNREACHABLE', message: 'The PAVE API could not be reached, or closed the connection before answering.' })
  }
})
