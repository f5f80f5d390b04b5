import { writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { ACCOUNT } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { makeTestPki, startTlsUpstream } from '../fixtures/tls.js'

const pki = makeTestPki()
t.teardown(pki.cleanup)

async function get (url: string): Promise<{ status: number, code: string | undefined, body: Record<string, unknown> }> {
  const res = await request(`${url}/v1/callbacks`)
  const body = await res.body.json() as Record<string, unknown>
  return { status: res.statusCode, code: res.headers['x-pave-proxy-error'] as string | undefined, body }
}

t.test('an HTTPS upstream with a self-signed certificate is refused by default', async (t) => {
  const upstream = await startTlsUpstream(pki.selfSigned)
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answer = await get(proxy.url)
  t.equal(answer.status, 502)
  t.equal(answer.code, 'PAVE_PROXY_UPSTREAM_TLS')
  t.same(answer.body, { message: 'The PAVE API\'s TLS certificate could not be verified.', code: 'PAVE_PROXY_UPSTREAM_TLS' })
  t.equal(upstream.received.length, 0, 'no request reached the upstream')
})

t.test('a certificate from a private CA is refused without the CA', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answer = await get(proxy.url)
  t.equal(answer.status, 502)
  t.equal(answer.code, 'PAVE_PROXY_UPSTREAM_TLS')
  t.equal(upstream.received.length, 0)
})

t.test('PAVE_UPSTREAM_CA_FILE: the private CA is trusted, the call is signed and answered', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answer = await get(proxy.url)
  t.equal(answer.status, 200)
  t.same(answer.body, { method: 'GET', url: '/v1/callbacks', signedBy: ACCOUNT.username, bytes: 0 })
  t.equal(upstream.received[0]?.headers.host, `127.0.0.1:${upstream.port}`)
})

t.test('upstream.caFile in the YAML file, relative to the working directory', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const configFile = join(pki.dir, 'private-ca.yaml')
  writeFileSync(configFile, `upstream:\n  caFile: ${relative(process.cwd(), pki.caFile)}\n`)
  const proxy = await startProxy({ upstreamUrl: upstream.url, configFile })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  t.equal(proxy.config.upstream.caFile, pki.caFile)
  const answer = await get(proxy.url)
  t.equal(answer.status, 200)
  t.equal(answer.body.signedBy, ACCOUNT.username)
})

t.test('the CA is added to the public roots, it does not make a self-signed certificate acceptable', async (t) => {
  const upstream = await startTlsUpstream(pki.selfSigned)
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answer = await get(proxy.url)
  t.equal(answer.status, 502)
  t.equal(answer.code, 'PAVE_PROXY_UPSTREAM_TLS')
})

t.test('with the CA, a certificate for another host name is still refused', async (t) => {
  const upstream = await startTlsUpstream(pki.otherName)
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answer = await get(proxy.url)
  t.equal(answer.status, 502)
  t.equal(answer.code, 'PAVE_PROXY_UPSTREAM_TLS')
  t.equal(upstream.received.length, 0)
})
