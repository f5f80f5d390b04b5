import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, ENVIRONMENT_VARIABLES, loadConfig, type LoadConfigInput } from '../../src/config/load.js'
import { planReload, tlsMaterialChanged } from '../../src/config/reload.js'
import { makeClientCa } from '../fixtures/client-ca.js'

const pki = makeClientCa()
t.teardown(pki.cleanup)
const BASE_ENV = { PAVE_USERNAME: 'acme', PAVE_API_KEY: 'key-not-real', PAVE_API_SECRET: 'secret-not-real-123' }
const TLS_ENV = { PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile, PAVE_PROXY_TLS_KEY_FILE: pki.server.keyFile }

function failure (input: LoadConfigInput): ConfigError {
  try {
    loadConfig(input)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('expected a ConfigError')
}

function problems (env: Record<string, string>, more: Omit<LoadConfigInput, 'env'> = {}): readonly string[] {
  return failure({ env: { ...BASE_ENV, ...env }, ...more }).problems
}

function writeTemp (name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-tls-config-'))
  writeFileSync(join(dir, name), content)
  return join(dir, name)
}

t.test('no TLS by default', async (t) => {
  t.equal(loadConfig({ env: BASE_ENV }).tls, undefined)
  const empty = writeTemp('pave-proxy.yaml', 'tls: {}\n')
  t.equal(loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: empty } }).tls, undefined, 'an empty tls: section is no TLS')
})

t.test('from the environment: the files are read at load, the config frozen', async (t) => {
  const config = loadConfig({ env: { ...BASE_ENV, ...TLS_ENV } })
  t.same(config.tls, { certFile: pki.server.certFile, keyFile: pki.server.keyFile, cert: pki.server.cert, key: pki.server.key })
  t.ok(Object.isFrozen(config.tls))
  const withCa = loadConfig({ env: { ...BASE_ENV, ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile } })
  t.equal(withCa.tls?.clientAuth, 'request', 'clientAuth defaults to request with a client CA')
  t.equal(withCa.tls?.clientCa, pki.caPem)
  t.equal(loadConfig({ env: { ...BASE_ENV, ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile, PAVE_PROXY_TLS_CLIENT_AUTH: 'require' } }).tls?.clientAuth, 'require')
  for (const name of ['PAVE_PROXY_TLS_CERT_FILE', 'PAVE_PROXY_TLS_KEY_FILE', 'PAVE_PROXY_TLS_CLIENT_CA_FILE', 'PAVE_PROXY_TLS_CLIENT_AUTH']) t.ok(ENVIRONMENT_VARIABLES.includes(name), name)
})

t.test('from the YAML file, paths relative to the working directory; the environment overrides', async (t) => {
  const file = writeTemp('pave-proxy.yaml', 'tls:\n  certFile: server.pem\n  keyFile: server.key\n  clientCaFile: ca.pem\n  clientAuth: require\n')
  const config = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: file }, cwd: pki.dir })
  t.same(config.tls, {
    certFile: join(pki.dir, 'server.pem'), keyFile: join(pki.dir, 'server.key'), clientCaFile: join(pki.dir, 'ca.pem'), clientAuth: 'require',
    cert: pki.server.cert, key: pki.server.key, clientCa: pki.caPem
  })
  const overridden = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: file, PAVE_PROXY_TLS_CERT_FILE: pki.serverNext.certFile, PAVE_PROXY_TLS_KEY_FILE: pki.serverNext.keyFile }, cwd: pki.dir })
  t.equal(overridden.tls?.cert, pki.serverNext.cert)
})

t.test('both or neither; client CA and clientAuth only with TLS; clientAuth only with a client CA — each named', async (t) => {
  t.same(problems({ PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile }), ['tls.keyFile (PAVE_PROXY_TLS_KEY_FILE) is required with PAVE_PROXY_TLS_CERT_FILE'])
  t.same(problems({ PAVE_PROXY_TLS_KEY_FILE: pki.server.keyFile }), ['tls.certFile (PAVE_PROXY_TLS_CERT_FILE) is required with PAVE_PROXY_TLS_KEY_FILE'])
  t.same(problems({ PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile }), ['PAVE_PROXY_TLS_CLIENT_CA_FILE needs TLS on the listener: set tls.certFile (PAVE_PROXY_TLS_CERT_FILE) and tls.keyFile (PAVE_PROXY_TLS_KEY_FILE)'])
  t.same(problems({ PAVE_PROXY_TLS_CLIENT_AUTH: 'require' }), ['PAVE_PROXY_TLS_CLIENT_AUTH needs TLS on the listener: set tls.certFile (PAVE_PROXY_TLS_CERT_FILE) and tls.keyFile (PAVE_PROXY_TLS_KEY_FILE)'])
  t.same(problems({ ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_AUTH: 'require' }), ['PAVE_PROXY_TLS_CLIENT_AUTH needs tls.clientCaFile (PAVE_PROXY_TLS_CLIENT_CA_FILE), the CA that verifies client certificates'])
  t.same(problems({ ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile, PAVE_PROXY_TLS_CLIENT_AUTH: 'optional' }), ['PAVE_PROXY_TLS_CLIENT_AUTH must be one of request, require'])
  const inline = writeTemp('pave-proxy.yaml', 'tls:\n  cert: "-----BEGIN CERTIFICATE-----"\n  key: inline\n')
  t.same(problems({ PAVE_PROXY_CONFIG: inline }), [
    'tls.cert is not a known setting (name a file: tls.certFile)',
    'tls.key is not a known setting (name a file: tls.keyFile)'
  ], 'PEM inline in the file is refused: files only, so they can be watched')
})

t.test('files that cannot be used are refused by name, never quoting their contents', async (t) => {
  const missing = join(pki.dir, 'missing.pem')
  const notPem = writeTemp('not.pem', 'hello\n')
  const badBlock = writeTemp('bad.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
  const all = [
    ...problems({ PAVE_PROXY_TLS_CERT_FILE: missing, PAVE_PROXY_TLS_KEY_FILE: missing, PAVE_PROXY_TLS_CLIENT_CA_FILE: missing }),
    ...problems({ PAVE_PROXY_TLS_CERT_FILE: notPem, PAVE_PROXY_TLS_KEY_FILE: notPem, PAVE_PROXY_TLS_CLIENT_CA_FILE: badBlock }),
    ...problems({ PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile, PAVE_PROXY_TLS_KEY_FILE: pki.serverNext.keyFile })
  ]
  t.same(all, [
    `PAVE_PROXY_TLS_CERT_FILE: cannot read ${missing} (ENOENT)`,
    `PAVE_PROXY_TLS_KEY_FILE: cannot read ${missing} (ENOENT)`,
    `PAVE_PROXY_TLS_CLIENT_CA_FILE: cannot read ${missing} (ENOENT)`,
    `PAVE_PROXY_TLS_CERT_FILE: ${notPem} holds no PEM certificate that parses (-----BEGIN CERTIFICATE-----)`,
    `PAVE_PROXY_TLS_KEY_FILE: ${notPem} holds no private key that can be read (PEM, unencrypted)`,
    `PAVE_PROXY_TLS_CLIENT_CA_FILE: ${badBlock} holds no PEM certificate that parses (-----BEGIN CERTIFICATE-----)`,
    `PAVE_PROXY_TLS_KEY_FILE: the key in ${pki.serverNext.keyFile} does not belong to the certificate in ${pki.server.certFile}`
  ])
  const keyBody = pki.server.key.split('\n')[1] as string
  t.notMatch(all.join('\n'), keyBody, 'no key material')

  const noCode = failure({ env: { ...BASE_ENV, ...TLS_ENV }, readFile: (path) => { if (path.endsWith('.key')) throw new Error('no code'); return readFileSync(path, 'utf8') } })
  t.same(noCode.problems, [`PAVE_PROXY_TLS_KEY_FILE: cannot read ${pki.server.keyFile} (error)`])
})

t.test('what OpenSSL itself refuses (an RSA key too small) is a problem too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-weak-'))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:512', '-nodes', '-keyout', 'weak.key', '-out', 'weak.pem', '-days', '2', '-subj', '/CN=weak'], { cwd: dir, stdio: 'ignore' })
  t.same(problems({ PAVE_PROXY_TLS_CERT_FILE: join(dir, 'weak.pem'), PAVE_PROXY_TLS_KEY_FILE: join(dir, 'weak.key') }),
    ['PAVE_PROXY_TLS_CERT_FILE: OpenSSL refuses this certificate and key (ERR_SSL_EE_KEY_TOO_SMALL)'])
})

t.test('ConfigError says whether the listener\'s TLS files were the problem', async (t) => {
  t.equal(failure({ env: { ...BASE_ENV, ...TLS_ENV, PAVE_PROXY_TLS_KEY_FILE: pki.serverNext.keyFile } }).listenerTls, true)
  t.equal(failure({ env: { ...BASE_ENV, ...TLS_ENV, LOG_LEVEL: 'shouting' } }).listenerTls, false)
  t.equal(new ConfigError(['x']).listenerTls, false)
})

t.test('reload: new contents are live, the TLS shape needs a restart', async (t) => {
  const off = loadConfig({ env: BASE_ENV })
  const on = loadConfig({ env: { ...BASE_ENV, ...TLS_ENV } })
  const next = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_TLS_CERT_FILE: pki.serverNext.certFile, PAVE_PROXY_TLS_KEY_FILE: pki.serverNext.keyFile } })
  const withCa = loadConfig({ env: { ...BASE_ENV, ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile } })
  const requiring = loadConfig({ env: { ...BASE_ENV, ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile, PAVE_PROXY_TLS_CLIENT_AUTH: 'require' } })
  const otherCa = loadConfig({ env: { ...BASE_ENV, ...TLS_ENV, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.otherCaFile } })
  t.same(planReload(on, next), { ok: true, restartNeeded: [] }, 'another certificate: live')
  t.equal(tlsMaterialChanged(on, next), true)
  t.equal(tlsMaterialChanged(on, on), false)
  t.equal(tlsMaterialChanged(withCa, otherCa), true, 'another client CA: live')
  t.equal(tlsMaterialChanged(off, on), false, 'nothing to swap without a running TLS listener')
  t.equal(tlsMaterialChanged(on, off), false)
  for (const [from, to, name] of [[off, on, 'on'], [on, off, 'off'], [on, withCa, 'client CA added'], [withCa, requiring, 'clientAuth']] as const) {
    t.same(planReload(from, to), { ok: true, restartNeeded: ['tls'] }, `${name}: restart needed`)
  }
})
