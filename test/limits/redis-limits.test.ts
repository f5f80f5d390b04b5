/**
 * The Redis store through real proxies on a real redis-server: the same answers as
 * the memory store, one budget for every proxy on the Redis, keys apart, a password
 * from a file, NOSCRIPT after SCRIPT FLUSH, and a flushed database.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { startRedis } from '../helpers/redis.js'
import { makeTestPki } from '../fixtures/tls.js'
import { burst, get, sleep, startLimitedProxy, statuses } from './lib/setup.js'

t.test('burst, then the exact 429; the state lives in Redis under the key prefix', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const proxy = await startLimitedProxy(upstream.url, [{ name: 'test', prefix: '/', limit: { requestsPerSecond: 2, burst: 5 } }], { store: 'redis', redis: { timeoutMs: 1000, url: redis.url, keyPrefix: 'pp-test:' } })
  t.teardown(proxy.close)
  await waitFor(async () => JSON.parse((await get(`${proxy.url}/readyz`)).body).limits.redis === 'available')
  t.match(JSON.parse((await get(`${proxy.url}/readyz`)).body), { status: 'ready', limits: { store: 'redis', redis: 'available', onError: 'local' } })

  t.same(statuses(await burst(`${proxy.url}/v1/sessions`, 5)), { 200: 5 })
  const refused = await get(`${proxy.url}/v1/sessions`)
  t.equal(refused.status, 429)
  t.equal(refused.headers['x-pave-proxy-error'], 'PAVE_PROXY_RATE_LIMITED')
  t.equal(refused.headers['retry-after'], '1')
  t.equal(refused.headers['ratelimit-policy'], '"account";q=2;w=1;pave-burst=5')
  t.equal(refused.headers.ratelimit, '"account";r=0;t=1')
  t.equal(upstream.received.length, 5)
  t.same(await redis.admin().keys('*'), ['pp-test:["account","test"]'], 'one key, under the prefix')
  const ttl = await redis.admin().pttl('pp-test:["account","test"]')
  t.ok(ttl > 0 && ttl <= 3600, `it expires once the budget is full again (${ttl} ms)`)
  t.match((await get(`${proxy.url}/metrics`)).body, /pave_proxy_limits_store_up 1/)
  t.ok(proxy.logs.some((l) => l.includes('rate-limit store available')), 'logged once it answered')
})

t.test('two proxies on one Redis spend one account budget; similar account names stay apart', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const accounts = [
    { name: 'ops', prefix: '/ops', limit: { requestsPerSecond: 1, burst: 4 } },
    { name: 'ops-a', prefix: '/ops-a', limit: { requestsPerSecond: 1, burst: 4 } }
  ]
  const limits = { store: 'redis', redis: { timeoutMs: 1000, url: redis.url } }
  const one = await startLimitedProxy(upstream.url, accounts, limits)
  t.teardown(one.close)
  const two = await startLimitedProxy(upstream.url, accounts, limits)
  t.teardown(two.close)
  for (const p of [one, two]) await waitFor(async () => JSON.parse((await get(`${p.url}/readyz`)).body).limits.redis === 'available')

  const answers = [...await burst(`${one.url}/ops/x`, 3), ...await burst(`${two.url}/ops/x`, 3)]
  t.same(statuses(answers), { 200: 4, 429: 2 }, 'four in all, whichever proxy')
  t.same(statuses(await burst(`${two.url}/ops-a/x`, 5)), { 200: 4, 429: 1 }, 'ops-a has its own budget')
  t.same((await redis.admin().keys('*')).sort(), ['pave-proxy:["account","ops"]', 'pave-proxy:["account","ops-a"]'])
})

t.test('a password from a file; NOSCRIPT after SCRIPT FLUSH and a FLUSHALL change nothing but give the budget back', async (t) => {
  const redis = await startRedis(['--requirepass', 'redis-test-password'])
  t.teardown(redis.close)
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const dir = mkdtempSync(join(tmpdir(), 'pave-redis-pw-'))
  writeFileSync(join(dir, 'password'), 'redis-test-password\n')
  const proxy = await startLimitedProxy(upstream.url, [{ name: 'test', prefix: '/', limit: { requestsPerSecond: 1, burst: 3 } }], { store: 'redis', redis: { timeoutMs: 1000, url: redis.url, passwordFile: join(dir, 'password') } })
  t.teardown(proxy.close)
  await waitFor(async () => JSON.parse((await get(`${proxy.url}/readyz`)).body).limits.redis === 'available')

  t.same(statuses(await burst(`${proxy.url}/x`, 4)), { 200: 3, 429: 1 })
  await redis.admin().script('FLUSH')
  t.equal((await get(`${proxy.url}/x`)).status, 429, 'the script is loaded again (NOSCRIPT → EVAL): still limited')
  await redis.admin().flushall()
  t.same(statuses(await burst(`${proxy.url}/x`, 4)), { 200: 3, 429: 1 }, 'flushed: a full burst, no lock-out')
  t.match(JSON.parse((await get(`${proxy.url}/readyz`)).body), { limits: { redis: 'available' } }, 'never counted as unavailable')
  t.notOk(proxy.logs.some((l) => l.includes('redis-test-password')), 'the password is never logged')
})

t.test('PAVE\'s 429 pauses the account on every proxy sharing the Redis', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  let first = true
  const upstream = await startUpstream({
    handler: (_req, res) => {
      if (first) {
        first = false
        res.writeHead(429, { 'retry-after': '2' }).end()
        return
      }
      res.writeHead(200).end('{}')
    }
  })
  t.teardown(upstream.close)
  const accounts = [{ name: 'test', prefix: '/', limit: { requestsPerSecond: 100, burst: 100 } }]
  const limits = { store: 'redis', redis: { timeoutMs: 1000, url: redis.url } }
  const one = await startLimitedProxy(upstream.url, accounts, limits)
  t.teardown(one.close)
  const two = await startLimitedProxy(upstream.url, accounts, limits)
  t.teardown(two.close)
  for (const p of [one, two]) await waitFor(async () => JSON.parse((await get(`${p.url}/readyz`)).body).limits.redis === 'available')

  t.equal((await get(`${one.url}/x`)).status, 429, 'PAVE\'s own')
  await waitFor(async () => (await redis.admin().pttl('pave-proxy:["pause","test"]')) > 0)
  const other = await get(`${two.url}/x`)
  t.equal(other.headers['x-pave-proxy-error'], 'PAVE_PROXY_RATE_LIMITED', 'the other proxy refuses too')
  t.match(other.headers.ratelimit, /^"upstream";r=0;t=[12]$/)
  t.equal(upstream.received.length, 1)
  await sleep(2100)
  t.equal((await get(`${two.url}/x`)).status, 200)
})

async function waitFor (condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!await condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time')
    await sleep(25)
  }
}

t.test('TLS: rediss:// with a private CA file, and tls: true on a redis:// URL', async (t) => {
  const pki = makeTestPki()
  t.teardown(pki.cleanup)
  const redis = await startRedis([], { certFile: join(pki.dir, 'server.pem'), keyFile: join(pki.dir, 'server.key'), caFile: pki.caFile })
  t.teardown(redis.close)
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const accounts = [{ name: 'test', prefix: '/', limit: { requestsPerSecond: 1, burst: 2 } }]
  const viaRediss = await startLimitedProxy(upstream.url, accounts, { store: 'redis', redis: { timeoutMs: 1000, url: redis.url, caFile: pki.caFile } })
  t.teardown(viaRediss.close)
  const viaFlag = await startLimitedProxy(upstream.url, accounts, { store: 'redis', redis: { timeoutMs: 1000, url: redis.url.replace('rediss:', 'redis:'), tls: true, caFile: pki.caFile } })
  t.teardown(viaFlag.close)
  for (const p of [viaRediss, viaFlag]) await waitFor(async () => JSON.parse((await get(`${p.url}/readyz`)).body).limits.redis === 'available')
  t.same(statuses([...await burst(`${viaRediss.url}/x`, 2), ...await burst(`${viaFlag.url}/x`, 2)]), { 200: 2, 429: 2 }, 'one budget over TLS')

  // Without the CA, the certificate is not trusted: never available, and the local fallback decides.
  const untrusted = await startLimitedProxy(upstream.url, accounts, { store: 'redis', redis: { timeoutMs: 1000, url: redis.url } })
  t.teardown(untrusted.close)
  await waitFor(async () => untrusted.logs.some((l) => l.includes('rate-limit store unavailable')))
  t.equal(JSON.parse((await get(`${untrusted.url}/readyz`)).body).limits.redis, 'unavailable')
  t.same(statuses(await burst(`${untrusted.url}/x`, 3)), { 200: 2, 429: 1 }, 'limited locally')
})
