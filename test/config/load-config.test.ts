import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, ENVIRONMENT_VARIABLES, loadConfig } from '../../src/config/load.js'

const BASE_ENV = { PAVE_USERNAME: 'acme', PAVE_API_KEY: 'key-not-real', PAVE_API_SECRET: 'secret-not-real-123' }

function problemsOf (fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  throw new Error('expected a ConfigError')
}

function tempFile (name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-config-'))
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

t.test('defaults, with the default account from the environment', async (t) => {
  const config = loadConfig({ env: BASE_ENV })
  t.equal(config.host, '127.0.0.1')
  t.equal(config.port, 8080)
  t.equal(config.logLevel, 'info')
  t.equal(config.bodyLimit, 52_428_800)
  t.same(config.upstream, { url: 'https://openapi.paveapi.com', connectTimeoutMs: 5000, timeoutMs: 30000, idleTimeoutMs: 60000, connections: 128, keepAliveTimeoutMs: 4000, retries: 2 })
  t.same(config.signing, { tokenLifetimeSeconds: 300, refreshMarginSeconds: 60, clockSkewCorrection: true, clockSkewWarnSeconds: 30, timestampFormat: 'iso-seconds' })
  t.same(config.inbound, { headersTimeoutMs: 10000, requestTimeoutMs: 300000, keepAliveTimeoutMs: 72000, maxHeaderSize: 16384 })
  t.same(config.shutdown, { delayMs: 5000, timeoutMs: 30000 })
  t.same(config.accounts, [{ name: 'default', prefix: '/', username: 'acme', apiKey: 'key-not-real', apiSecret: 'secret-not-real-123' }])
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.upstream) && Object.isFrozen(config.accounts[0]), 'deeply frozen')
})

t.test('every setting from the environment', async (t) => {
  const config = loadConfig({
    env: {
      ...BASE_ENV,
      HOST: '0.0.0.0',
      PORT: '9090',
      LOG_LEVEL: 'debug',
      PAVE_UPSTREAM_URL: 'http://127.0.0.1:1234',
      PAVE_UPSTREAM_CONNECT_TIMEOUT_MS: '100',
      PAVE_UPSTREAM_TIMEOUT_MS: '200',
      PAVE_UPSTREAM_IDLE_TIMEOUT_MS: '300',
      PAVE_PROXY_BODY_LIMIT: '1024',
      PAVE_PROXY_SHUTDOWN_DELAY_MS: '0',
      PAVE_PROXY_SHUTDOWN_TIMEOUT_MS: '10',
      PAVE_TOKEN_LIFETIME_SECONDS: '120',
      PAVE_TOKEN_REFRESH_MARGIN_SECONDS: '30',
      PAVE_UPSTREAM_CONNECTIONS: '8',
      PAVE_UPSTREAM_RETRIES: '0',
      PAVE_CLOCK_SKEW_CORRECTION: 'false',
      PAVE_CLOCK_SKEW_WARN_SECONDS: '5',
      PAVE_PROXY_ALLOW: '127.0.0.1/32, ::1/128',
      PAVE_PROXY_MAX_IN_FLIGHT: '16',
      PAVE_PROXY_MAX_QUEUED: '32',
      PAVE_PROXY_QUEUE_TIMEOUT_MS: '500',
      PAVE_PROXY_SEND_TIMEOUT_MS: '700'
    }
  })
  t.same(config.capacity, { maxInFlight: 16, maxQueued: 32, queueTimeoutMs: 500, sendTimeoutMs: 700 })
  t.equal(config.upstream.retries, 0)
  t.same(config.inbound.allow, ['127.0.0.1/32', '::1/128'])
  t.equal(config.host, '0.0.0.0')
  t.equal(config.port, 9090)
  t.equal(config.logLevel, 'debug')
  t.equal(config.upstream.url, 'http://127.0.0.1:1234')
  t.equal(config.upstream.connectTimeoutMs, 100)
  t.equal(config.upstream.timeoutMs, 200)
  t.equal(config.upstream.idleTimeoutMs, 300)
  t.equal(config.upstream.connections, 8)
  t.equal(config.bodyLimit, 1024)
  t.same(config.shutdown, { delayMs: 0, timeoutMs: 10 })
  t.same(config.signing, { tokenLifetimeSeconds: 120, refreshMarginSeconds: 30, clockSkewCorrection: false, clockSkewWarnSeconds: 5, timestampFormat: 'iso-seconds' })
})

t.test('precedence: defaults < file < environment < flags', async (t) => {
  const file = tempFile('pave-proxy.yaml', 'port: 1111\nhost: 10.0.0.1\nlogLevel: warn\nupstream:\n  timeoutMs: 1234\n')
  const fromFile = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: file } })
  t.equal(fromFile.port, 1111)
  t.equal(fromFile.host, '10.0.0.1')
  t.equal(fromFile.upstream.timeoutMs, 1234)
  t.equal(fromFile.upstream.connectTimeoutMs, 5000, 'defaults kept beside file values')
  t.equal(fromFile.configFile, file)
  const fromEnv = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: file, PORT: '2222' } })
  t.equal(fromEnv.port, 2222)
  t.equal(fromEnv.host, '10.0.0.1')
  const fromFlags = loadConfig({ env: { ...BASE_ENV, PORT: '2222' }, argv: ['--config', file, '--port', '3333', '--log-level', 'error'] })
  t.equal(fromFlags.port, 3333)
  t.equal(fromFlags.logLevel, 'error')
  t.equal(fromFlags.host, '10.0.0.1', '--config names the file')
})

t.test('the secret from a file, trailing newline trimmed', async (t) => {
  const secretFile = tempFile('secret', 'file-secret-not-real\n')
  const config = loadConfig({ env: { PAVE_USERNAME: 'acme', PAVE_API_KEY: 'k', PAVE_API_SECRET_FILE: secretFile } })
  t.equal(config.accounts[0]?.apiSecret, 'file-secret-not-real')
  t.equal(config.accounts[0]?.apiSecretFile, secretFile)
  const crlf = tempFile('secret', 'crlf-secret-not-real\r\n')
  t.equal(loadConfig({ env: { PAVE_USERNAME: 'a', PAVE_API_KEY: 'k', PAVE_API_SECRET_FILE: crlf } }).accounts[0]?.apiSecret, 'crlf-secret-not-real')
})

t.test('missing credentials are reported together, by name', async (t) => {
  const problems = problemsOf(() => loadConfig({ env: {} }))
  t.same(problems, ['PAVE_API_SECRET (or PAVE_API_SECRET_FILE) is required', 'PAVE_USERNAME is required', 'PAVE_API_KEY is required'])
  const partial = problemsOf(() => loadConfig({ env: { PAVE_API_KEY: 'k' } }))
  t.ok(partial.includes('PAVE_API_SECRET (or PAVE_API_SECRET_FILE) is required'), partial.join('; '))
  t.ok(partial.includes('PAVE_USERNAME is required'), partial.join('; '))
})

t.test('every invalid setting is reported at once, and no secret is printed', async (t) => {
  const secret = 'do-not-print-this-secret'
  let error: unknown
  try {
    loadConfig({
      env: {
        PAVE_USERNAME: 'acme',
        PAVE_API_KEY: 'k',
        PAVE_API_SECRET: secret,
        PAVE_API_SECRET_FILE: '/nonexistent/secret',
        PORT: 'eighty',
        LOG_LEVEL: 'loud',
        PAVE_UPSTREAM_URL: 'ftp://example.invalid',
        PAVE_UPSTREAM_TIMEOUT_MS: '-5',
        PAVE_PROXY_BODY_LIMIT: '1.5'
      }
    })
  } catch (e) {
    error = e
  }
  t.type(error, ConfigError)
  const problems = (error as ConfigError).problems
  t.ok(problems.includes('PAVE_API_SECRET and PAVE_API_SECRET_FILE are both set: set one'), problems.join('\n'))
  t.ok(problems.some((p) => p.startsWith('PAVE_API_SECRET_FILE: cannot read /nonexistent/secret')))
  t.ok(problems.includes('PORT must be integer'))
  t.ok(problems.some((p) => p.startsWith('LOG_LEVEL must be one of')))
  t.ok(problems.includes('PAVE_UPSTREAM_URL must use https: or http:'))
  t.ok(problems.includes('PAVE_UPSTREAM_TIMEOUT_MS must be >= 1'))
  t.ok(problems.includes('PAVE_PROXY_BODY_LIMIT must be integer'))
  t.notMatch((error as Error).message, secret)
})

t.test('upstream URL must be a plain origin', async (t) => {
  for (const [url, expected] of [
    ['not a url', 'PAVE_UPSTREAM_URL must be an absolute http(s) URL such as https://openapi.paveapi.com'],
    ['https://user:pw@example.invalid', 'PAVE_UPSTREAM_URL must not carry credentials'],
    ['https://example.invalid/v1', 'PAVE_UPSTREAM_URL must be an origin (scheme, host and port only), without a path or query'],
    ['https://example.invalid/?a=1', 'PAVE_UPSTREAM_URL must be an origin (scheme, host and port only), without a path or query']
  ] as const) {
    const problems = problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_UPSTREAM_URL: url } }))
    t.same(problems, [expected], url)
    t.notMatch(problems.join(), 'pw', 'userinfo never printed')
  }
  t.equal(loadConfig({ env: { ...BASE_ENV, PAVE_UPSTREAM_URL: 'https://openapi.paveapi.com/' } }).upstream.url, 'https://openapi.paveapi.com/')
})

t.test('accounts from the config file; the environment account is the default', async (t) => {
  const secretFile = tempFile('test-secret', 'test-secret-not-real\n')
  const file = tempFile('pave-proxy.yaml', [
    'accounts:',
    '  - name: test',
    '    prefix: /test',
    '    username: acme-test',
    '    apiKey: test-key',
    `    apiSecretFile: ${secretFile}`,
    '  - name: prod',
    '    prefix: /prod',
    '    username: acme',
    '    apiKey: prod-key',
    '    apiSecret: prod-secret-not-real'
  ].join('\n'))
  const onlyFile = loadConfig({ env: { PAVE_PROXY_CONFIG: file } })
  t.same(onlyFile.accounts.map((a) => [a.name, a.prefix, a.apiSecret]), [['test', '/test', 'test-secret-not-real'], ['prod', '/prod', 'prod-secret-not-real']])
  const withEnv = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: file } })
  t.same(withEnv.accounts.map((a) => [a.name, a.prefix]), [['test', '/test'], ['prod', '/prod'], ['default', '/']])
})

t.test('account problems name the account', async (t) => {
  const file = tempFile('pave-proxy.yaml', [
    'accounts:',
    '  - { name: a, prefix: /same, username: u, apiKey: k, apiSecret: s }',
    '  - { name: b, prefix: /same, username: u, apiKey: k, apiSecret: s }',
    '  - { name: a, prefix: /other, username: u, apiKey: k, apiSecret: s }',
    '  - { name: c, prefix: /healthz, username: u, apiKey: k, apiSecret: s }',
    '  - { name: d, prefix: "/x/../y", username: u, apiKey: k, apiSecret: s }',
    '  - { name: e, prefix: /e, username: u, apiKey: k }',
    '  - { name: f, prefix: /f, username: u, apiKey: k, apiSecret: s, colour: blue }'
  ].join('\n'))
  const problems = problemsOf(() => loadConfig({ env: { PAVE_PROXY_CONFIG: file } }))
  t.ok(problems.includes('account "b": prefix /same is already used by account "a"'), problems.join('\n'))
  t.ok(problems.includes('account "a": two accounts share this name'))
  t.ok(problems.includes('account "c": prefix /healthz is reserved for the proxy\'s own endpoints'))
  t.ok(problems.some((p) => p.startsWith('accounts[4].prefix must be "/" or a path like "/test"')))
  t.ok(problems.includes('accounts[5].apiSecret or apiSecretFile is required'))
  t.ok(problems.includes('accounts[6].colour is not a known setting'))
})

t.test('config file problems', async (t) => {
  t.same(problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: '/nonexistent/pave.yaml' } })),
    ['PAVE_PROXY_CONFIG: cannot read /nonexistent/pave.yaml (ENOENT)'])
  const bad = tempFile('bad.yaml', 'port: [1,\n  apiSecret: leaked-secret-value')
  const problems = problemsOf(() => loadConfig({ env: BASE_ENV, argv: ['--config', bad] }))
  t.equal(problems.length, 1)
  t.match(problems[0], /^--config: .* is not valid YAML \(line \d+, column \d+\)$/)
  t.notMatch(problems[0], 'leaked-secret-value')
  const list = tempFile('list.yaml', '- 1\n- 2\n')
  t.match(problemsOf(() => loadConfig({ env: BASE_ENV, argv: ['--config', list] }))[0], /must hold a YAML mapping/)
  const empty = tempFile('empty.yaml', '')
  t.equal(loadConfig({ env: BASE_ENV, argv: ['--config', empty] }).port, 8080, 'an empty file is an empty mapping')
  const unknown = tempFile('unknown.yaml', 'prot: 80\naccounts: nope\n')
  t.same(problemsOf(() => loadConfig({ env: BASE_ENV, argv: ['--config', unknown] })),
    ['accounts (in the config file) must be a list', 'prot is not a known setting'])
})

t.test('refresh margin must leave a usable lifetime', async (t) => {
  t.same(problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_TOKEN_LIFETIME_SECONDS: '100', PAVE_TOKEN_REFRESH_MARGIN_SECONDS: '60' } })),
    ['PAVE_TOKEN_REFRESH_MARGIN_SECONDS must be at most half of PAVE_TOKEN_LIFETIME_SECONDS'])
})

t.test('relative paths resolve against cwd', async (t) => {
  const secretFile = tempFile('s', 'relative-secret-not-real')
  const [dir, name] = [secretFile.slice(0, secretFile.lastIndexOf('/')), secretFile.slice(secretFile.lastIndexOf('/') + 1)]
  writeFileSync(join(dir, 'ca.pem'), readFileSync(new URL('../fixtures/public-ca.pem', import.meta.url)))
  const config = loadConfig({ env: { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET_FILE: name, PAVE_UPSTREAM_CA_FILE: 'ca.pem' }, cwd: dir })
  t.equal(config.accounts[0]?.apiSecret, 'relative-secret-not-real')
  t.equal(config.upstream.caFile, join(dir, 'ca.pem'))
})

t.test('empty secret file', async (t) => {
  const empty = tempFile('s', '\n')
  t.same(problemsOf(() => loadConfig({ env: { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET_FILE: empty } })),
    ['PAVE_API_SECRET_FILE: the file is empty'])
})

t.test('the list of environment names', async (t) => {
  for (const name of ['PAVE_USERNAME', 'PAVE_API_KEY', 'PAVE_API_SECRET', 'PAVE_API_SECRET_FILE', 'PAVE_UPSTREAM_URL', 'PAVE_PROXY_CONFIG',
    'HOST', 'PORT', 'LOG_LEVEL', 'PAVE_UPSTREAM_CONNECT_TIMEOUT_MS', 'PAVE_UPSTREAM_TIMEOUT_MS', 'PAVE_UPSTREAM_IDLE_TIMEOUT_MS', 'PAVE_PROXY_BODY_LIMIT']) {
    t.ok(ENVIRONMENT_VARIABLES.includes(name), name)
  }
})

t.test('read errors without a code, empty values, bad names, booleans and relative token files', async (t) => {
  const failing = (): string => { throw new Error('no code here') }
  const problems = problemsOf(() => loadConfig({
    env: { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET_FILE: '/s', PAVE_PROXY_TOKEN_FILE: '/t', PAVE_PROXY_CONFIG: '/c.yaml' },
    readFile: failing
  }))
  t.same(problems, [
    'PAVE_PROXY_CONFIG: cannot read /c.yaml (error)',
    'PAVE_API_SECRET_FILE: cannot read /s (error)',
    'PAVE_PROXY_TOKEN_FILE: cannot read /t (error)'
  ])
  const file = tempFile('odd.yaml', 'accounts:\n  - { name: "-bad name", prefix: /x, username: "", apiKey: k, apiSecret: s }\n')
  const odd = problemsOf(() => loadConfig({ env: { PAVE_PROXY_CONFIG: file } }))
  t.ok(odd.includes('accounts[0].name must be 1-63 letters, digits, "_", "-" or ".", starting with a letter or digit'), odd.join('\n'))
  t.ok(odd.includes('accounts[0].username must not be empty'))
  t.equal(loadConfig({ env: { ...BASE_ENV, PAVE_CLOCK_SKEW_CORRECTION: 'true' } }).signing.clockSkewCorrection, true)
  const token = tempFile('token', 'a-relative-token-not-real\n')
  const [dir, name] = [token.slice(0, token.lastIndexOf('/')), token.slice(token.lastIndexOf('/') + 1)]
  const config = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_TOKEN_FILE: name }, cwd: dir })
  t.equal(config.inbound.tokenFile, token)
  t.equal(config.inbound.token, 'a-relative-token-not-real')
})

t.test('defaults for the input itself: no environment, a parsed command line, a relative config file, odd account entries', async (t) => {
  t.same(problemsOf(() => loadConfig()), ['PAVE_API_SECRET (or PAVE_API_SECRET_FILE) is required', 'PAVE_USERNAME is required', 'PAVE_API_KEY is required'])
  const { parseCommandLine } = await import('../../src/config/cli.js')
  t.equal(loadConfig({ env: BASE_ENV, argv: parseCommandLine(['--port', '1234']) }).port, 1234)
  const file = tempFile('relative.yaml', 'port: 4321\naccounts:\n  - 1\n')
  const [dir, name] = [file.slice(0, file.lastIndexOf('/')), file.slice(file.lastIndexOf('/') + 1)]
  t.same(problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: name }, cwd: dir })), ['accounts[0] must be object'])
  const fine = tempFile('fine.yaml', 'port: 4321\n')
  t.equal(loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: fine.slice(fine.lastIndexOf('/') + 1) }, cwd: fine.slice(0, fine.lastIndexOf('/')) }).port, 4321)
})

t.test('capacity settings reach the admission gate', async (t) => {
  const { overloadOptions } = await import('../../src/inbound/admission.js')
  const config = loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_MAX_IN_FLIGHT: '3', PAVE_PROXY_SEND_TIMEOUT_MS: '1234' } })
  t.same(overloadOptions(config), { maxInFlight: 3, maxQueued: 1024, queueTimeoutMs: 10000, sendTimeoutMs: 1234 })
  t.same(overloadOptions(loadConfig({ env: BASE_ENV })), { maxInFlight: 128, maxQueued: 1024, queueTimeoutMs: 10000, sendTimeoutMs: 60000 }, 'in flight defaults to the pool size')
  t.equal(overloadOptions(config, { maxInFlight: 7 }).maxInFlight, 7, 'an explicit option wins')
})
