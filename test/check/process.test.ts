import t from 'tap'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { runMain } from '../helpers/spawn.js'
import { makeTestPki, startTlsUpstream } from '../fixtures/tls.js'
import { startEgressProxy } from '../fixtures/egress-proxy.js'
import { accountEnv } from '../fixtures/run-check.js'

t.test('pave-proxy check: accepted, exit 0', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const result = await runMain(['check'], { ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 0, result.stderr)
  const lines = result.stdout.trim().split('\n')
  t.equal(lines[0], `configuration is valid: 1 account → ${upstream.url}`)
  t.match(lines[1], /^default \(\/\): accepted, clock offset [+-]\d+\.\d s$/)
  t.equal(lines[2], 'check passed: 1 account accepted')
  t.equal(result.stderr, '')
  t.equal(upstream.received[0]?.signedBy, ACCOUNT.username)
  t.notMatch(result.stdout, ACCOUNT.secret)
})

t.test('pave-proxy check: rejected, exit 1, no secret printed', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const secret = 'wrong-secret-not-real-0123'
  const result = await runMain(['check'], { ...accountEnv({ ...ACCOUNT, secret }), PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 1)
  t.match(result.stdout, /default \(\/\): rejected: Unable to validate the request/)
  t.match(result.stdout, 'check failed: 0 of 1 account accepted')
  t.notMatch(result.stdout + result.stderr, secret)
  t.notMatch(result.stdout + result.stderr, upstream.received[0]?.headers['api-token'] as string)
})

t.test('pave-proxy check through HTTPS_PROXY to an upstream with a private CA', async (t) => {
  const pki = makeTestPki()
  const upstream = await startTlsUpstream(pki.server)
  const egress = await startEgressProxy()
  t.teardown(async () => { await egress.close(); await upstream.close(); pki.cleanup() })
  const result = await runMain(['check'], { ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url, PAVE_UPSTREAM_CA_FILE: pki.caFile, HTTPS_PROXY: egress.url })
  t.equal(result.code, 0, result.stdout + result.stderr)
  t.match(result.stdout, /default \(\/\): accepted, /)
  t.equal(egress.visits.length, 1)
})

t.test('pave-proxy check with an invalid configuration: exit 2 before any call, the proxy URL not printed', async (t) => {
  const result = await runMain(['check'], { ...accountEnv(), HTTPS_PROXY: 'ftp://proxy-user:proxy-pass-not-real@proxy.example' })
  t.equal(result.code, 2)
  t.match(result.stderr, 'HTTPS_PROXY must use http: or https:')
  t.notMatch(result.stderr + result.stdout, 'proxy-pass-not-real')
})
