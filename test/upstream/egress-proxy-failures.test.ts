import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { closedPort, startEgressProxy } from '../fixtures/egress-proxy.js'

t.test('credentials in the proxy URL are sent as Proxy-Authorization and never logged', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy({ credentials: { user: 'proxy-user', pass: 'proxy-pass-not-real' } })
  const proxyUrl = egress.url.replace('http://', 'http://proxy-user:proxy-pass-not-real@')
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTP_PROXY: proxyUrl } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(egress.visits[0]?.proxyAuthorization, `Basic ${Buffer.from('proxy-user:proxy-pass-not-real').toString('base64')}`)
  t.equal(upstream.received[0]?.headers['proxy-authorization'], undefined, 'the upstream never sees them')
  const logs = proxy.logs.join('\n')
  t.notMatch(logs, 'proxy-pass-not-real')
  t.notMatch(logs, Buffer.from('proxy-user:proxy-pass-not-real').toString('base64'))
})

t.test('a caller\'s Proxy-Authorization is dropped, not forwarded to the egress proxy', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTP_PROXY: egress.url } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`, { headers: { 'proxy-authorization': 'Basic Y2FsbGVyOnNlY3JldA==' } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(egress.visits[0]?.proxyAuthorization, undefined)
  t.equal(upstream.received[0]?.headers['proxy-authorization'], undefined)
})

t.test('wrong proxy credentials (407): 502, and the credentials are not logged', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy({ credentials: { user: 'proxy-user', pass: 'the-right-one' } })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTP_PROXY: egress.url.replace('http://', 'http://proxy-user:wrong-pass-not-real@') } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  await res.body.dump()
  t.equal(upstream.received.length, 0)
  t.notMatch(proxy.logs.join('\n'), 'wrong-pass-not-real')
})

t.test('the egress proxy refuses the tunnel (403): 502', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy({ mode: 'refuse' })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTP_PROXY: egress.url } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  await res.body.dump()
  t.equal(upstream.received.length, 0)
})

t.test('the egress proxy is down: 502 unreachable', async (t) => {
  const upstream = await startUpstream()
  const port = await closedPort()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTP_PROXY: `http://127.0.0.1:${port}`, PAVE_UPSTREAM_RETRIES: '0' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  await res.body.dump()
})

t.test('an egress proxy that never answers CONNECT is bounded by the connect timeout', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy({ mode: 'stall' })
  const proxy = await startProxy({
    upstreamUrl: upstream.url,
    env: { HTTP_PROXY: egress.url, PAVE_UPSTREAM_CONNECT_TIMEOUT_MS: '300', PAVE_UPSTREAM_TIMEOUT_MS: '30000' }
  })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const started = Date.now()
  const res = await request(`${proxy.url}/v1/callbacks`)
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 504)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_TIMEOUT')
  await res.body.dump()
  t.ok(elapsed < 10_000, `answered after ${elapsed} ms, well before the 30 s response timeout`)
  t.equal(egress.visits.length, 1)
})
