import t from 'tap'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { runMain } from '../helpers/spawn.js'
import { accountEnv } from '../fixtures/run-check.js'
import { makeClientCa } from '../fixtures/client-ca.js'

const pki = makeClientCa()
t.teardown(pki.cleanup)
const TLS_ENV = { PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile, PAVE_PROXY_TLS_KEY_FILE: pki.server.keyFile }

t.test('pave-proxy check with TLS on the listener: the TLS files are validated, PAVE is checked as ever', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const result = await runMain(['check'], { ...accountEnv(), ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile, PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 0, result.stdout + result.stderr)
  t.match(result.stdout, /default \(\/\): accepted, clock offset/)
  t.equal(upstream.received[0]?.signedBy, ACCOUNT.username)
})

t.test('pave-proxy check and --check-config with a broken TLS pair: exit 2 naming the setting, no key printed', async (t) => {
  const env = { ...accountEnv(), ...TLS_ENV, PAVE_PROXY_TLS_KEY_FILE: pki.serverNext.keyFile, PAVE_UPSTREAM_URL: 'http://127.0.0.1:9' }
  for (const args of [['check'], ['--check-config']]) {
    const result = await runMain(args, env)
    t.equal(result.code, 2, args.join(' '))
    t.match(result.stderr, `PAVE_PROXY_TLS_KEY_FILE: the key in ${pki.serverNext.keyFile} does not belong to the certificate in ${pki.server.certFile}`)
    t.notMatch(result.stdout + result.stderr, pki.serverNext.key.split('\n')[1] as string)
  }
})

t.test('--check-config says the listener speaks TLS', async (t) => {
  const on = await runMain(['--check-config'], { ...accountEnv(), ...TLS_ENV })
  t.equal(on.code, 0, on.stderr)
  t.match(on.stdout, /→ https:\/\/openapi\.paveapi\.com; listener TLS on\n$/)
  const withCa = await runMain(['--check-config'], { ...accountEnv(), ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile, PAVE_PROXY_TLS_CLIENT_AUTH: 'require' })
  t.match(withCa.stdout, /; listener TLS on \(client certificates: require\)\n$/)
})
