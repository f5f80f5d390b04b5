import t from 'tap'
import { Dispatcher } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { makeTestPki, startTlsUpstream } from '../fixtures/tls.js'
import { closedPort, startEgressProxy } from '../fixtures/egress-proxy.js'
import { accountEnv, check } from '../fixtures/run-check.js'

const pki = makeTestPki()
t.teardown(pki.cleanup)

t.test('nothing listening: unreachable with the connection error\'s code, exit 1', async (t) => {
  const port = await closedPort()
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: `http://127.0.0.1:${port}` })
  t.equal(result.code, 1)
  t.equal(result.lines[1], 'default (/): unreachable: ECONNREFUSED (PAVE_PROXY_UPSTREAM_UNREACHABLE)')
  t.equal(result.lines[2], 'check failed: 0 of 1 account accepted')
})

t.test('an unverifiable certificate: unreachable, as the proxy would refuse it too', async (t) => {
  const upstream = await startTlsUpstream(pki.selfSigned)
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 1)
  t.equal(result.lines[1], 'default (/): unreachable: DEPTH_ZERO_SELF_SIGNED_CERT (PAVE_PROXY_UPSTREAM_TLS)')
  t.equal(upstream.received.length, 0)
})

t.test('a private CA configured with PAVE_UPSTREAM_CA_FILE is trusted by the check too', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  t.teardown(upstream.close)
  t.equal((await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url })).lines[1],
    'default (/): unreachable: UNABLE_TO_VERIFY_LEAF_SIGNATURE (PAVE_PROXY_UPSTREAM_TLS)')
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url, PAVE_UPSTREAM_CA_FILE: pki.caFile })
  t.equal(result.code, 0)
  t.match(result.lines[1], /^default \(\/\): accepted, /)
})

t.test('through the egress proxy, as the proxy goes; the proxy is named without its credentials', async (t) => {
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy({ credentials: { user: 'proxy-user', pass: 'proxy-pass-not-real' } })
  t.teardown(async () => { await egress.close(); await upstream.close() })
  const result = await check({
    ...accountEnv(),
    PAVE_UPSTREAM_URL: upstream.url,
    PAVE_UPSTREAM_CA_FILE: pki.caFile,
    HTTPS_PROXY: egress.url.replace('http://', 'http://proxy-user:proxy-pass-not-real@')
  })
  t.equal(result.code, 0)
  t.equal(result.lines[0], `configuration is valid: 1 account → ${upstream.url} (egress proxy: https via ${egress.url})`)
  t.match(result.lines[1], /^default \(\/\): accepted, /)
  t.same(egress.visits.map((v) => `${v.method} ${v.target}`), [`CONNECT 127.0.0.1:${upstream.port}`])
  t.notMatch(result.output, 'proxy-pass-not-real')
})

t.test('the egress proxy refuses the tunnel: unreachable', async (t) => {
  const upstream = await startUpstream()
  const egress = await startEgressProxy({ mode: 'refuse' })
  t.teardown(async () => { await egress.close(); await upstream.close() })
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url, HTTP_PROXY: egress.url, NO_PROXY: 'localhost' })
  t.equal(result.code, 1)
  t.equal(result.lines[1], 'default (/): unreachable: UND_ERR_ABORTED (PAVE_PROXY_UPSTREAM_UNREACHABLE)')
  t.equal(upstream.received.length, 0)
})

t.test('a failure without an error code is still reported by the proxy\'s code', async (t) => {
  class Broken extends Dispatcher {
    override dispatch (): boolean { throw new Error('broken pool') }
  }
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: 'http://127.0.0.1:9' }, { dispatcher: new Broken() })
  t.equal(result.code, 1)
  t.equal(result.lines[1], 'default (/): unreachable: PAVE_PROXY_UPSTREAM_UNREACHABLE')
  t.notMatch(result.output, 'broken pool', 'no error message, only codes')
})
