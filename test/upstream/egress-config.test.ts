import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, ENVIRONMENT_VARIABLES, loadConfig } from '../../src/config/load.js'
import { createDispatcher, describeEgress } from '../../src/upstream/dispatcher.js'

const BASE_ENV = { PAVE_USERNAME: 'u', PAVE_API_KEY: 'key-not-real', PAVE_API_SECRET: 'secret-not-real-123' }

function problemsOf (env: Record<string, string>, configFile?: string): string[] {
  try {
    loadConfig({ env: { ...BASE_ENV, ...env, ...(configFile !== undefined ? { PAVE_PROXY_CONFIG: configFile } : {}) } })
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems]
    throw error
  }
  return []
}

const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-egress-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('no proxy variables: no egress settings', async (t) => {
  t.equal(loadConfig({ env: BASE_ENV }).upstream.egress, undefined)
})

t.test('the uppercase variables', async (t) => {
  const config = loadConfig({ env: { ...BASE_ENV, HTTPS_PROXY: 'http://proxy.example:3128', HTTP_PROXY: 'http://proxy.example:3129', NO_PROXY: 'localhost,.internal' } })
  t.same(config.upstream.egress, { httpsProxy: 'http://proxy.example:3128', httpProxy: 'http://proxy.example:3129', noProxy: 'localhost,.internal' })
  t.ok(Object.isFrozen(config.upstream.egress))
})

t.test('the lowercase variables win, as curl and undici read them; empty ones are unset', async (t) => {
  const config = loadConfig({
    env: {
      ...BASE_ENV,
      https_proxy: 'http://lower.example:1',
      HTTPS_PROXY: 'http://upper.example:1',
      http_proxy: '',
      HTTP_PROXY: 'http://upper.example:2',
      no_proxy: 'lower.example',
      NO_PROXY: 'upper.example'
    }
  })
  t.same(config.upstream.egress, { httpsProxy: 'http://lower.example:1', httpProxy: 'http://upper.example:2', noProxy: 'lower.example' })
})

t.test('upstream.egress in the YAML file; the environment overrides it', async (t) => {
  const file = join(dir, 'egress.yaml')
  writeFileSync(file, 'upstream:\n  egress:\n    httpsProxy: http://from-file.example:3128\n    noProxy: .corp.example\n')
  t.same(loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: file } }).upstream.egress,
    { httpsProxy: 'http://from-file.example:3128', noProxy: '.corp.example' })
  t.same(loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: file, HTTPS_PROXY: 'http://from-env.example:3128' } }).upstream.egress,
    { httpsProxy: 'http://from-env.example:3128', noProxy: '.corp.example' })
})

t.test('bad proxy URLs are named by the variable that set them, never printed', async (t) => {
  const problems = problemsOf({
    HTTPS_PROXY: 'http://proxy-user:pass-not-real@[proxy.example]:3128',
    http_proxy: 'socks5://proxy-user:pass-not-real@proxy.example:1080'
  })
  t.same(problems, [
    'HTTPS_PROXY must be an absolute http(s) URL such as http://proxy.example:3128',
    'http_proxy must use http: or https:'
  ])
  t.same(problemsOf({ https_proxy: 'http://proxy-user:pass-not-real@proxy.example:3128/some/path?x=1' }),
    ['https_proxy must be a proxy origin (scheme, optional credentials, host and port), without a path or query'])
  for (const problem of [...problems]) t.notMatch(problem, 'pass-not-real')
  t.same(problemsOf({ HTTPS_PROXY: 'proxy.example:3128' }), ['HTTPS_PROXY must use http: or https:'], 'a URL without its scheme')
})

t.test('a bad proxy URL from the YAML file names the key and its variables', async (t) => {
  const file = join(dir, 'bad-egress.yaml')
  writeFileSync(file, 'upstream:\n  egress:\n    httpProxy: "ftp://proxy.example"\n    httpsProxy: 3128\n    extra: true\n')
  t.same(problemsOf({}, file).sort(), [
    'upstream.egress.extra is not a known setting',
    'upstream.egress.httpProxy (http_proxy or HTTP_PROXY) must use http: or https:',
    'upstream.egress.httpsProxy (https_proxy or HTTPS_PROXY) must be string'
  ])
})

t.test('a proxy URL with credentials is valid', async (t) => {
  t.same(problemsOf({ HTTPS_PROXY: 'https://proxy-user:pass-not-real@proxy.example:8443/' }), [])
})

t.test('the six variables are in the list of environment names', async (t) => {
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy']) t.ok(ENVIRONMENT_VARIABLES.includes(name), name)
})

t.test('describeEgress: scheme, host and port of each proxy, never credentials', async (t) => {
  t.equal(describeEgress(undefined), undefined)
  t.equal(describeEgress({ noProxy: 'localhost' }), undefined)
  t.equal(describeEgress({ httpsProxy: 'http://proxy-user:pass-not-real@proxy.example:3128/' }), 'https via http://proxy.example:3128')
  t.equal(describeEgress({ httpProxy: 'http://u:p@proxy.example:3128' }), 'http and https via http://proxy.example:3128')
  t.equal(describeEgress({ httpsProxy: 'https://a.example:8443', httpProxy: 'http://b.example', noProxy: '.corp.example,10.0.0.1' }),
    'https via https://a.example:8443; http via http://b.example; direct for .corp.example,10.0.0.1')
})

t.test('createDispatcher: a CA file that vanished after validation names the setting', async (t) => {
  const config = loadConfig({ env: BASE_ENV })
  const missing = join(dir, 'gone.pem')
  t.throws(() => createDispatcher({ ...config.upstream, caFile: missing }),
    { message: `upstream.caFile (PAVE_UPSTREAM_CA_FILE): cannot read ${missing} (ENOENT)` })
})

t.test('createDispatcher: plain pool without a proxy, proxy-aware pool with one', async (t) => {
  const config = loadConfig({ env: BASE_ENV })
  const plain = createDispatcher(config.upstream)
  const proxied = createDispatcher({ ...config.upstream, egress: { noProxy: 'x' } })
  const withProxy = createDispatcher({ ...config.upstream, egress: { httpProxy: 'http://127.0.0.1:9' } })
  t.equal(plain.constructor.name, 'Agent')
  t.equal(proxied.constructor.name, 'Agent', 'NO_PROXY alone changes nothing')
  t.equal(withProxy.constructor.name, 'EnvHttpProxyAgent')
  await Promise.all([plain.close(), proxied.close(), withProxy.close()])
})
