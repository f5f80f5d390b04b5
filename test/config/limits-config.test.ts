/** The limits settings: defaults, environment, the file, and every problem named without printing a password. */
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { planReload } from '../../src/config/reload.js'

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
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-limits-'))
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

const withFile = (content: unknown, env: Record<string, string> = {}): ReturnType<typeof loadConfig> =>
  loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_CONFIG: tempFile('c.yaml', JSON.stringify(content)), ...env } })

t.test('defaults: the memory store; Redis settings ready for when it is chosen', async (t) => {
  const config = loadConfig({ env: BASE_ENV })
  t.same(config.limits, { store: 'memory', redis: { keyPrefix: 'pave-proxy:', timeoutMs: 50, tls: false, onError: 'local' } })
  t.equal(config.accounts[0]?.limit, undefined)
})

t.test('from the environment and the file, with the password from its file', async (t) => {
  const passwordFile = tempFile('redis-password', 'not-a-real-redis-password\n')
  const config = withFile({
    limits: { redis: { keyPrefix: 'gw:', timeoutMs: 80, onError: 'closed', tls: true } },
    accounts: [{ name: 'default', prefix: '/', limit: { requestsPerSecond: 50, burst: 100 } }]
  }, { PAVE_PROXY_LIMITS_STORE: 'redis', PAVE_PROXY_REDIS_URL: 'redis://redis.example:6379/2', PAVE_PROXY_REDIS_PASSWORD_FILE: passwordFile })
  t.same(config.limits, {
    store: 'redis',
    redis: { url: 'redis://redis.example:6379/2', keyPrefix: 'gw:', timeoutMs: 80, onError: 'closed', tls: true, passwordFile, password: 'not-a-real-redis-password' }
  })
  t.same(config.accounts[0]?.limit, { requestsPerSecond: 50, burst: 100 })
})

t.test('every problem by name, never the URL or its password', async (t) => {
  t.same(problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_LIMITS_STORE: 'redis' } })), [
    'limits.redis.url (PAVE_PROXY_REDIS_URL) is required when PAVE_PROXY_LIMITS_STORE is redis'
  ])
  t.same(problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_LIMITS_STORE: 'etcd' } })), [
    'PAVE_PROXY_LIMITS_STORE must be one of memory, redis'
  ])
  const secretUrl = (scheme: string, rest = ''): string => `${scheme}://user:hunter2-not-real@redis.example:6379${rest}`
  for (const [url, problem] of [
    [secretUrl('http'), 'PAVE_PROXY_REDIS_URL must use redis: or rediss:'],
    [secretUrl('redis', '/0/x'), 'PAVE_PROXY_REDIS_URL may name a database number (/0) but no other path or query'],
    [secretUrl('redis', '?db=1'), 'PAVE_PROXY_REDIS_URL may name a database number (/0) but no other path or query'],
    ['redis://user:hunter2-not-real@[::1', 'PAVE_PROXY_REDIS_URL must be a URL such as redis://redis.example:6379 or rediss://redis.example:6380'],
    ['redis://', 'PAVE_PROXY_REDIS_URL must name a host']
  ] as const) {
    const problems = problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_REDIS_URL: url } }))
    t.same(problems, [problem], url.replace('hunter2-not-real', '…'))
    t.notMatch(problems.join(' '), /hunter2/, 'the password is not printed')
  }
  const problems = problemsOf(() => withFile({
    limits: { store: 'redis', redis: { url: 'rediss://r.example', timeoutMs: 0, onError: 'ignore', passwordFile: '/nonexistent/pw', caFile: '/nonexistent/ca.pem', extra: 1 } },
    accounts: [
      { name: 'a', prefix: '/a', username: 'u', apiKey: 'k', apiSecret: 's', limit: { requestsPerSecond: 0, burst: 0 } },
      { name: 'b', prefix: '/b', username: 'u', apiKey: 'k', apiSecret: 's', limit: { burst: 1.5 } }
    ]
  }, { PAVE_USERNAME: '', PAVE_API_KEY: '', PAVE_API_SECRET: '' }))
  t.same([...problems].sort(), [
    'accounts[0].limit.burst must be >= 1',
    'accounts[0].limit.requestsPerSecond must be > 0',
    'accounts[1].limit.requestsPerSecond is required',
    'accounts[1].limit.burst must be integer',
    'limits.redis.caFile: cannot read /nonexistent/ca.pem (ENOENT)',
    'limits.redis.extra is not a known setting',
    'limits.redis.onError must be one of local, open, closed',
    'limits.redis.passwordFile (PAVE_PROXY_REDIS_PASSWORD_FILE): cannot read /nonexistent/pw (ENOENT)',
    'limits.redis.timeoutMs must be >= 1'
  ].sort())
  t.same(problemsOf(() => loadConfig({ env: { ...BASE_ENV, PAVE_PROXY_REDIS_PASSWORD_FILE: tempFile('empty', '') } })), [
    'PAVE_PROXY_REDIS_PASSWORD_FILE: the file is empty'
  ])
  t.same(problemsOf(() => withFile({ limits: { redis: { caFile: tempFile('ca.pem', 'not a certificate') } } })).length, 1, 'a CA file without a certificate')
})

t.test('a reload that changes limits applies them at the next start, and says so', async (t) => {
  const before = withFile({ accounts: [{ name: 'default', prefix: '/', limit: { requestsPerSecond: 5 } }] })
  const after = withFile({ limits: { store: 'redis', redis: { url: 'redis://r.example' } }, accounts: [{ name: 'default', prefix: '/', limit: { requestsPerSecond: 6 } }] })
  t.same(planReload(before, after), { ok: true, restartNeeded: ['limits', 'accounts[].limit'] })
})

t.test('a relative password file is read from the working directory and kept as an absolute path', async (t) => {
  const passwordFile = tempFile('redis-password', 'not-a-real-redis-password\n')
  const dir = join(passwordFile, '..')
  const config = loadConfig({
    cwd: dir,
    env: { ...BASE_ENV, PAVE_PROXY_LIMITS_STORE: 'redis', PAVE_PROXY_REDIS_URL: 'redis://redis.example:6379', PAVE_PROXY_REDIS_PASSWORD_FILE: 'redis-password' }
  })
  t.equal(config.limits.redis.passwordFile, passwordFile)
  t.equal(config.limits.redis.password, 'not-a-real-redis-password')
})
