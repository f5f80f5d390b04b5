import t from 'tap'
import { request } from 'undici'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { makeTestPki, startTlsUpstream } from '../fixtures/tls.js'
import { startEgressProxy } from '../fixtures/egress-proxy.js'

const pki = makeTestPki()
t.teardown(pki.cleanup)

t.test('HTTPS_PROXY: an https upstream is reached through a CONNECT tunnel, TLS verified end to end', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTPS_PROXY: egress.url, PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })

  const first = await request(`${proxy.url}/v1/sessions/UCB-C3NPR4AGQZ`)
  t.equal(first.statusCode, 200)
  t.same(await first.body.json(), { method: 'GET', url: '/v1/sessions/UCB-C3NPR4AGQZ', signedBy: ACCOUNT.username, bytes: 0 })
  const second = await request(`${proxy.url}/v1/callbacks`, { method: 'POST', body: '{"event":"SESSION:COMPLETE"}', headers: { 'content-type': 'application/json' } })
  t.equal(second.statusCode, 200)
  await second.body.dump()

  t.same(egress.visits, [{ method: 'CONNECT', target: `127.0.0.1:${upstream.port}`, proxyAuthorization: undefined }], 'one tunnel, kept alive for both calls')
  t.equal(upstream.received.length, 2)
  t.equal(upstream.received[1]?.body.toString(), '{"event":"SESSION:COMPLETE"}')
})

t.test('HTTPS_PROXY does not lift certificate verification: without the CA the tunnel carries a refused handshake', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTPS_PROXY: egress.url } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_TLS')
  await res.body.dump()
  t.equal(egress.visits.length, 1, 'the proxy was used')
  t.equal(upstream.received.length, 0)
})

t.test('https_proxy (lowercase) wins over HTTPS_PROXY, as curl and undici read them', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const used = await startEgressProxy()
  const ignored = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { https_proxy: used.url, HTTPS_PROXY: ignored.url, PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await used.close(); await ignored.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(used.visits.length, 1)
  t.equal(ignored.visits.length, 0)
})

t.test('HTTP_PROXY: an http upstream is reached through the proxy (tunnelled too)', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTP_PROXY: egress.url } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 200)
  t.equal((await res.body.json() as Record<string, unknown>).signedBy, ACCOUNT.username)
  t.same(egress.visits.map((v) => `${v.method} ${v.target}`), [`CONNECT 127.0.0.1:${upstream.port}`])
  t.equal(upstream.received[0]?.headers.host, `127.0.0.1:${upstream.port}`, 'Host is the upstream\'s')
})

t.test('HTTP_PROXY alone also serves an https upstream (HTTPS_PROXY unset)', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTP_PROXY: egress.url, PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(egress.visits.length, 1)
})

t.test('HTTPS_PROXY alone leaves an http upstream direct', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTPS_PROXY: egress.url } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(egress.visits.length, 0)
  t.equal(upstream.received.length, 1)
})

for (const noProxy of ['127.0.0.1', 'localhost,127.0.0.1', 'PORT', '*']) {
  t.test(`NO_PROXY=${noProxy}: the upstream is reached directly`, async (t) => {
    const upstream = await startTlsUpstream(pki.server)
    const egress = await startEgressProxy()
    const value = noProxy === 'PORT' ? `127.0.0.1:${upstream.port}` : noProxy
    const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTPS_PROXY: egress.url, NO_PROXY: value, PAVE_UPSTREAM_CA_FILE: pki.caFile } })
    t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
    const res = await request(`${proxy.url}/v1/callbacks`)
    t.equal(res.statusCode, 200)
    await res.body.dump()
    t.equal(egress.visits.length, 0, 'the egress proxy saw nothing')
    t.equal(upstream.received[0]?.signedBy, ACCOUNT.username)
  })
}

t.test('NO_PROXY for another host or port leaves the proxy in use', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { https_proxy: egress.url, no_proxy: `.internal.example,127.0.0.1:${upstream.port === 1 ? 2 : 1}`, PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(egress.visits.length, 1)
})

t.test('an https: egress proxy, verified with the same private CA', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy({ tls: pki.server })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTPS_PROXY: egress.url, PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  t.match(egress.url, /^https:/)
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(egress.visits.length, 1)
})

t.test('an https: egress proxy with an unverifiable certificate is refused', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy({ tls: pki.selfSigned })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { HTTPS_PROXY: egress.url, PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await egress.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_TLS')
  await res.body.dump()
  t.equal(egress.visits.length, 0, 'no CONNECT was sent over an unverified connection')
  t.equal(upstream.received.length, 0)
})
