import t from 'tap'
import { createServer as createTcpServer, type AddressInfo } from 'node:net'
import { createServer } from 'node:http'
import { request } from 'undici'
import { startProxy } from '../helpers/proxy.js'

async function freePort (): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

t.test('a bodyless GET whose connection was refused is retried; it succeeds once the upstream is up', async (t) => {
  const port = await freePort()
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${port}`, env: { PAVE_UPSTREAM_RETRIES: '3' } })
  let hits = 0
  const upstream = createServer((_req, res) => { hits++; res.end('up') })
  t.teardown(async () => {
    await proxy.close()
    await new Promise<void>((resolve) => upstream.close(() => resolve()))
  })
  setTimeout(() => upstream.listen(port, '127.0.0.1'), 30)
  const res = await request(`${proxy.url}/v1/sessions/ABC`)
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'up')
  t.equal(hits, 1)
  const metrics = await (await request(`${proxy.url}/metrics`)).body.text()
  t.match(metrics, /pave_proxy_upstream_retries_total\{account="default"\} [1-3]/)
})

t.test('retries are bounded, and a POST is never retried', async (t) => {
  const port = await freePort()
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${port}`, env: { PAVE_UPSTREAM_RETRIES: '2' } })
  t.teardown(() => proxy.close())
  const started = Date.now()
  const get = await request(`${proxy.url}/v1/sessions/ABC`)
  t.equal(get.statusCode, 502)
  await get.body.dump()
  t.ok(Date.now() - started >= 100, 'waited between attempts (backoff with jitter)')
  const post = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{}' })
  t.equal(post.statusCode, 502)
  await post.body.dump()
  const metrics = await (await request(`${proxy.url}/metrics`)).body.text()
  t.match(metrics, /pave_proxy_upstream_retries_total\{account="default"\} 2\n/, 'two retries for the GET, none for the POST')
})

t.test('a caller who leaves during the backoff ends the retries', async (t) => {
  const port = await freePort()
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${port}`, env: { PAVE_UPSTREAM_RETRIES: '5' } })
  t.teardown(() => proxy.close())
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 30)
  await t.rejects(request(`${proxy.url}/v1/sessions/ABC`, { signal: controller.signal }))
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  const metrics = await (await request(`${proxy.url}/metrics`)).body.text()
  const retries = Number(/pave_proxy_upstream_retries_total\{account="default"\} (\d+)/.exec(metrics)?.[1] ?? 0)
  t.ok(retries <= 1, `stopped after ${retries} retry`)
  t.ok(proxy.logs.some((l) => l.includes('"aborted":true')), 'the access line says the caller went away')
})
