/** The Redis store on its own, against a real redis-server: the races a proxy test cannot aim at. */
import t from 'tap'
import { pino } from 'pino'
import { logCapture } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'
import { limitRule } from '../../src/inbound/limits/gcra.js'
import { MemoryLimitStore } from '../../src/inbound/limits/memory-store.js'
import { RedisLimitStore, redisOptions } from '../../src/inbound/limits/redis-store.js'
import type { LimitPlan } from '../../src/inbound/limits/plan.js'
import { sleep } from './lib/setup.js'

const PLAN: LimitPlan = { keys: ['t:["account","a"]'], rules: [limitRule({ requestsPerSecond: 1, burst: 2 })], scopes: ['account'], pauseKey: 't:["pause","a"]' }
const config = (url: string, timeoutMs: number) => ({ url, keyPrefix: 't:', timeoutMs, tls: false, onError: 'local' as const })

async function available (store: RedisLimitStore): Promise<void> {
  const started = Date.now()
  while (store.state().redis !== 'available') {
    if (Date.now() - started > 10_000) throw new Error('not available')
    await sleep(20)
  }
}

t.test('a reply or a failure that comes after the timeout changes nothing; a probe that fails keeps the store unavailable', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const { stream, lines } = logCapture()
  const changes: boolean[] = []
  const store = new RedisLimitStore({ config: config(redis.url, 300), local: new MemoryLimitStore(), log: pino(stream), onAvailability: (up) => changes.push(up) })
  t.teardown(store.close)
  await available(store)
  t.equal(await store.decide(PLAN), undefined)

  await redis.admin().call('CLIENT', 'PAUSE', '5000', 'ALL')
  const started = performance.now()
  t.equal(await store.decide(PLAN), undefined, 'timed out: decided locally (a full local burst)')
  const waited = performance.now() - started
  t.ok(waited >= 290 && waited < 1000, `waited the timeout, no more (${waited.toFixed(0)} ms)`)
  t.equal(store.state().redis, 'unavailable')
  await sleep(700) // a probe's PING is now waiting on the paused server
  await redis.stop() // the late command and the probe fail after the fact
  await sleep(300)
  t.equal(store.state().redis, 'unavailable')
  t.same(changes, [true, false], 'one change each way')
  t.equal(lines.filter((l) => l.includes('unavailable')).length, 1)
})

t.test('a pause seen here answers without a round trip; one set by another replica is learned from Redis', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const local = new MemoryLimitStore()
  const store = new RedisLimitStore({ config: config(redis.url, 1000), local, log: pino({ level: 'silent' }), onAvailability: () => {} })
  t.teardown(store.close)
  await available(store)
  t.equal(store.pause(PLAN.pauseKey, 1500), true)
  t.match(store.decide(PLAN), { scope: 'upstream' }, 'answered at once, not a promise')
  await sleep(100)
  t.ok(await redis.admin().pttl(PLAN.pauseKey) > 1000, 'shared through Redis')

  const other = new RedisLimitStore({ config: config(redis.url, 1000), local: new MemoryLimitStore(), log: pino({ level: 'silent' }), onAvailability: () => {} })
  t.teardown(other.close)
  await available(other)
  t.match(await other.decide(PLAN), { scope: 'upstream', rule: -1 }, 'the other replica learns it from the script')
  t.match(other.decide(PLAN), { scope: 'upstream' }, 'and then keeps it locally')
  t.equal(other.pause(PLAN.pauseKey, 500), false, 'not a new pause there')
  await redis.admin().set(PLAN.pauseKey, '1', 'PX', 100) // shorter: the script never shortens an existing longer pause…
  t.equal(store.pause(PLAN.pauseKey, 2000), false, '…and a known pause is not a new one')
  await sleep(50)
  t.ok(await redis.admin().pttl(PLAN.pauseKey) > 1500)
})

t.test('while unavailable, a pause is kept locally only; options never queue and use TLS when asked', async (t) => {
  const store = new RedisLimitStore({ config: config('redis://127.0.0.1:1', 50), local: new MemoryLimitStore(), log: pino({ level: 'silent' }), onAvailability: () => {} })
  t.equal(store.state().redis, 'unavailable')
  t.equal(store.pause(PLAN.pauseKey, 1000), true)
  t.match(store.decide(PLAN), { scope: 'upstream' })
  await store.close()
  t.match(redisOptions({ ...config('redis://x', 50), tls: true, password: 'p' }), { enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, protocol: 2, tls: {}, password: 'p', connectTimeout: 1000 })
  t.notOk('tls' in redisOptions(config('redis://x', 50)))
  const delays = Array.from({ length: 12 }, (_, i) => (redisOptions(config('redis://x', 50)).retryStrategy as (n: number) => number)(i + 1))
  t.ok(delays.every((d) => d >= 37 && d <= 2500), `backoff, capped (${delays.join(', ')})`)
})

t.test('a connection lost while a decision waits answers at once by onError; a refused password is reported by name', async (t) => {
  const redis = await startRedis(['--requirepass', 'right-password-not-real'])
  t.teardown(redis.close)
  const store = new RedisLimitStore({ config: { ...config(redis.url, 2000), password: 'right-password-not-real' }, local: new MemoryLimitStore(), log: pino({ level: 'silent' }), onAvailability: () => {} })
  t.teardown(store.close)
  await available(store)
  await redis.admin().call('CLIENT', 'PAUSE', '5000', 'ALL')
  const started = performance.now()
  const pending = store.decide(PLAN)
  await sleep(200)
  await redis.stop()
  t.equal(await pending, undefined, 'decided locally')
  t.ok(performance.now() - started < 1500, 'when the connection went, not at the 2 s timeout')
  await redis.start()

  const { stream, lines } = logCapture()
  const wrong = new RedisLimitStore({ config: { ...config(redis.url, 200), password: 'wrong-password-not-real' }, local: new MemoryLimitStore(), log: pino(stream), onAvailability: () => {} })
  t.teardown(wrong.close)
  const waitStarted = Date.now()
  while (!lines.some((l) => l.includes('unavailable')) && Date.now() - waitStarted < 10_000) await sleep(25)
  t.match(JSON.parse(lines.find((l) => l.includes('unavailable')) as string), { reason: /ReplyError|connection closed/ })
  t.notOk(lines.join('').includes('password-not-real'), 'no password in the log')
  t.equal(wrong.state().redis, 'unavailable')
})
