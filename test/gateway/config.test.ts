/**
 * `callers:` as the configuration loads it: files read, every problem reported by the
 * caller it belongs to, never a token or a key in a message, and the result frozen.
 */
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { pathPatternProblem, publicJwks } from '../../src/config/callers.js'
import { makeClientCa } from '../fixtures/client-ca.js'

const pki = makeClientCa()
t.teardown(pki.cleanup)
const TLS_ENV = { PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile, PAVE_PROXY_TLS_KEY_FILE: pki.server.keyFile, PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile }

const ENV = { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's' }
const TOKEN = 'config-token-not-real-0123456789'

function setup (yaml: string[], files: Record<string, string> = {}): { dir: string, load: (env?: Record<string, string>) => ReturnType<typeof loadConfig> } {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-callers-config-'))
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
  writeFileSync(join(dir, 'pave-proxy.yaml'), yaml.join('\n').replaceAll('$DIR', dir) + '\n')
  return { dir, load: (env = {}) => loadConfig({ env: { ...ENV, PAVE_PROXY_CONFIG: join(dir, 'pave-proxy.yaml'), ...env }, cwd: dir }) }
}

function problemsOf (load: () => unknown): readonly string[] {
  try {
    load()
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

const JWK = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' }

t.test('a full callers list loads: tokens read, paths resolved, frozen', async (t) => {
  const { dir, load } = setup([
    'callers:',
    '  - name: intake',
    '    tokenFile: intake.tokens',
    '    from: [10.0.0.0/8, 127.0.0.1]',
    '    accounts: [default]',
    '    allow: [{ methods: [POST], paths: [/v1/sessions] }]',
    '  - name: reporting',
    '    jwt: { issuer: https://kubernetes.default.svc, audience: pave-proxy, subject: "system:serviceaccount:reports:job", jwksFile: jwks.json }',
    '    allow: [{ methods: ["*"], paths: ["/v1/**", /] }]',
    '  - name: ops-console',
    '    clientCert: { uri: "spiffe://cluster.local/ns/ops/sa/console" }',
    '    jwt: { issuer: https://issuer.example, audience: pave-proxy, subject: console, jwksUrl: "https://issuer.example/jwks?x=1" }',
    'metrics: { callers: [ops-console] }',
    'audit: { file: audit.log }'
  ], { 'intake.tokens': `${TOKEN}\r\n\n  second-token-not-real-0123456789 \n${TOKEN}\n`, 'jwks.json': JSON.stringify({ keys: [JWK] }) })
  const config = load(TLS_ENV)
  const [intake, reporting, console] = config.callers ?? []
  t.same(intake?.tokens, [TOKEN, 'second-token-not-real-0123456789'], 'one per line, trimmed, blank lines and repeats dropped')
  t.equal(intake?.tokenFile, join(dir, 'intake.tokens'))
  t.equal(reporting?.jwt?.jwksFile, join(dir, 'jwks.json'))
  t.same(reporting?.jwt?.jwks, { keys: [JWK] })
  t.same(console?.clientCert, { uri: 'spiffe://cluster.local/ns/ops/sa/console' })
  t.equal(config.audit?.file, join(dir, 'audit.log'))
  t.same(config.metrics?.callers, ['ops-console'])
  t.ok(Object.isFrozen(intake) && Object.isFrozen(intake?.tokens) && Object.isFrozen(reporting?.jwt?.jwks))
})

t.test('every problem is reported, by caller, without a token or a key', async (t) => {
  const { dir, load } = setup([
    'callers:',
    '  - name: Bad_Name',
    '    tokenFile: short.tokens',
    '  - name: dup',
    '    tokenFile: missing.tokens',
    '  - name: dup',
    '    tokenFile: empty.tokens',
    '  - name: no-proof',
    '    from: [10.0.0.0/33]',
    '    accounts: [default, nope]',
    '    allow:',
    '      - { methods: [GET, FETCH], paths: [v1, "/v1/**/x", "/v1/%2e", "/v1//x", "/v1/a*"] }',
    '  - name: jwt-both',
    '    jwt: { issuer: i, audience: a, subject: s, jwksFile: jwks.json, jwksUrl: "https://x.example/jwks" }',
    '  - name: jwt-http',
    '    jwt: { issuer: i, audience: a, subject: s, jwksUrl: "http://x.example/jwks" }',
    '  - name: jwt-creds',
    '    jwt: { issuer: i, audience: a, subject: s, jwksUrl: "https://user:pw@x.example/jwks" }',
    '  - name: jwt-notaurl',
    '    jwt: { issuer: i, audience: a, subject: s, jwksUrl: "not a url" }',
    '  - name: jwt-secret',
    '    jwt: { issuer: i, audience: a, subject: s, jwksFile: secret.json }',
    '  - name: jwt-notjson',
    '    jwt: { issuer: i, audience: a, subject: s, jwksFile: notjson.json }',
    '  - name: jwt-missing',
    '    jwt: { issuer: i, audience: a, subject: s, jwksFile: missing.json }',
    '  - name: jwt-none',
    '    jwt: { issuer: i, audience: a }',
    '  - name: inline',
    '    tokens: [inline-token-not-real-00000000]',
    '    jwt: { issuer: i, audience: a, subject: s, jwks: { keys: [] } }',
    '  - name: two-certs',
    '    clientCert: { uri: a, dns: b }',
    '  - name: shares-a',
    '    tokenFile: shared.tokens',
    '  - name: shares-b',
    '    tokenFile: shared.tokens',
    'metrics: { callers: [nobody] }'
  ], {
    'short.tokens': 'short-secret-x\n',
    'empty.tokens': '\n\n',
    'shared.tokens': `${TOKEN}\n`,
    'jwks.json': JSON.stringify({ keys: [JWK] }),
    'secret.json': JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0LWtleS1ub3QtcmVhbA' }] }),
    'notjson.json': '{ keys'
  })
  const problems = problemsOf(load)
  const expected = [
    `caller "Bad_Name": tokenFile: every token in ${join(dir, 'short.tokens')} must be at least 16 characters, without spaces`,
    `caller "dup": tokenFile: cannot read ${join(dir, 'missing.tokens')} (ENOENT)`,
    'caller "dup": two callers share this name',
    `caller "dup": tokenFile: ${join(dir, 'empty.tokens')} holds no token`,
    'caller "no-proof": needs a proof: tokenFile, clientCert or jwt',
    'caller "no-proof": from: "10.0.0.0/33" is not a CIDR block such as 10.0.0.0/8 or ::1/128',
    'caller "no-proof": accounts: no account is named "nope"',
    'caller "no-proof": allow path "v1" must start with "/"',
    'caller "no-proof": allow path "/v1/**/x" "**" may only be the last segment',
    'caller "no-proof": allow path "/v1/%2e" must be segments of letters, digits and "-._~:@!$&\'()+,=", "*" (one segment) or a last "**" (any rest); no empty, dot or percent-encoded segments',
    'caller "no-proof": allow path "/v1//x" must be segments of letters, digits and "-._~:@!$&\'()+,=", "*" (one segment) or a last "**" (any rest); no empty, dot or percent-encoded segments',
    'caller "no-proof": allow path "/v1/a*" must be segments of letters, digits and "-._~:@!$&\'()+,=", "*" (one segment) or a last "**" (any rest); no empty, dot or percent-encoded segments',
    'caller "jwt-both": jwt needs one of jwksFile or jwksUrl',
    'caller "jwt-http": jwt.jwksUrl must use https:',
    'caller "jwt-creds": jwt.jwksUrl must not carry credentials',
    'caller "jwt-notaurl": jwt.jwksUrl must be an absolute https: URL',
    `caller "jwt-secret": jwt.jwksFile: ${join(dir, 'secret.json')} holds a key that is not an RSA, EC or OKP public key (symmetric keys are never accepted)`,
    `caller "jwt-notjson": jwt.jwksFile: ${join(dir, 'notjson.json')} is not JSON`,
    `caller "jwt-missing": jwt.jwksFile: cannot read ${join(dir, 'missing.json')} (ENOENT)`,
    'caller "jwt-none": jwt needs one of jwksFile or jwksUrl',
    'caller "inline": tokens is not a known setting (use tokenFile)',
    'caller "inline": jwt.jwks is not a known setting (use jwt.jwksFile or jwt.jwksUrl)',
    'caller "shares-b": a token in its tokenFile is also in the tokenFile of caller "shares-a"',
    'metrics.callers: no caller is named "nobody"',
    'callers[0].name must be 1-63 lowercase letters, digits or "-", starting with a letter or digit',
    'callers[3].allow[0].methods[1] must be one of *, GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
    'callers[11].jwt.subject is required',
    'callers[13].clientCert must NOT have more than 1 properties',
    'caller "two-certs": clientCert needs TLS on the listener with a client CA (tls.clientCaFile)'
  ]
  t.same([...problems].sort(), [...expected].sort())
  const text = problems.join('\n')
  t.notOk(text.includes(TOKEN) || text.includes('short-secret-x') || text.includes('c2VjcmV0') || text.includes('inline-token'), 'no token or key in any problem')
})

t.test('callers and the shared token, metrics.callers without callers, an empty list', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-callers-config-'))
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`)
  const both = setup(['callers:', `  - { name: a, tokenFile: ${join(dir, 'token')} }`])
  t.same(problemsOf(() => both.load({ PAVE_PROXY_TOKEN_FILE: join(dir, 'token') })), ['inbound.tokenFile (PAVE_PROXY_TOKEN_FILE) cannot be combined with callers: give the token to a caller (tokenFile)'])
  const metricsOnly = setup(['metrics: { callers: [a] }'])
  t.same(problemsOf(() => metricsOnly.load()), ['metrics.callers needs callers: it names callers allowed to read /metrics'])
  const tlsWithoutCa = setup(['callers:', '  - { name: a, clientCert: { dns: a.example } }'])
  t.same(problemsOf(() => tlsWithoutCa.load({ PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile, PAVE_PROXY_TLS_KEY_FILE: pki.server.keyFile })), ['caller "a": clientCert needs TLS on the listener with a client CA (tls.clientCaFile)'])
  const empty = setup(['callers: []'])
  t.same(problemsOf(() => empty.load()), ['callers must NOT have fewer than 1 items'])
  const notList = setup(['callers: { name: a }'])
  t.same(problemsOf(() => notList.load()), ['callers must be array'])
  const notObject = setup(['callers: [just-a-name]'])
  t.same(problemsOf(() => notObject.load()), ['callers[0] must be object'])
  const noName = setup(['callers:', `  - { tokenFile: ${join(dir, 'token')}, jwt: "x", allow: [{ methods: [GET], paths: 7 }, "x"] }`])
  t.same([...problemsOf(() => noName.load())].sort(), ['callers[0].name is required', 'callers[0].allow[0].paths must be array', 'callers[0].allow[1] must be object', 'callers[0].jwt must be object'].sort())
})

t.test('path patterns and JWKS documents', async (t) => {
  for (const good of ['/', '/v1', '/v1/*', '/v1/**', '/**', '/v1/sessions/*/photos', '/v1/callbacks/SESSION:COMPLETE']) t.equal(pathPatternProblem(good), undefined, good)
  for (const bad of ['', 'v1', '/v1/', '/v1/.', '/v1/..', '/v1/a;b', '/v1/a b', '/**/x']) t.type(pathPatternProblem(bad), 'string', bad)
  t.same(publicJwks({ keys: [JWK] }), { keys: [JWK] })
  t.equal(publicJwks(null), 'is not a JWKS (a JSON object with a "keys" list)')
  t.equal(publicJwks({ keys: 'x' }), 'is not a JWKS (a JSON object with a "keys" list)')
  t.equal(publicJwks({ keys: [] }), 'holds no key')
  t.equal(publicJwks({ keys: [7] }), 'holds a key that is not a JSON object')
  t.equal(publicJwks({ keys: [{ ...JWK, d: 'private' }] }), 'holds private key material: give the public keys only')
  t.equal(publicJwks({ keys: [{ x: 1 }] }), 'holds a key that is not an RSA, EC or OKP public key (symmetric keys are never accepted)')
})
