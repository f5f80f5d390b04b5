/**
 * Redis stopped mid-load, restarted, and paused: nobody waits for it, nothing
 * queues, each `onError` mode answers as documented, and the store comes back by
 * itself. The change is logged once each way and shows in `/readyz` and a gauge.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import type { TestProxy } from '../helpers/proxy.js'
import { burst, get, sleep, startLimitedProxy, statuses, type Answer } from './lib/setup.js'

async function setUp (t: { teardown: (fn: () => unknown) => void }, onError: string, timeoutMs = 200): Promise<{ redis: TestRedis, proxy: TestProxy, received: () => number }> {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startUpstream({ handler: (_req, res) => { res.writeHead(200).end('{}') } })
  t.teardown(upstream.close)
  const proxy = await startLimitedProxy(upstream.url, [{ name: 'test', prefix: '/', limit: { requestsPerSecond: 1, burst: 3 } }], { store: 'redis', redis: { url: redis.url, onError, timeoutMs } })
  t.teardown(proxy.close)
  await waitForState(proxy, 'available')
  return { redis, proxy, received: () => upstream.received.length }
}

async function readyz (proxy: TestProxy): Promise<{ status: string, limits: Record<string, string> }> {
  return JSON.parse((await get(`${proxy.url}/readyz`)).body)
}

async function waitForState (proxy: TestProxy, state: string, timeoutMs = 15_000): Promise<void> {
  const started = Date.now()
  while ((await readyz(proxy)).limits.redis !== state) {
    if (Date.now() - started > timeoutMs) throw new Error(`the store did not become ${state}`)
    await sleep(50)
  }
}

const lines = (proxy: TestProxy, text: string): number => proxy.logs.filter((l) => l.includes(text)).length

/** One request after another until stopped; every answer kept. */
function load (url: string): { stop: () => Promise<Answer[]> } {
  const answers: Answer[] = []
  let running = true
  const loop = (async () => {
    while (running) {
      answers.push(await get(url))
      await sleep(20)
    }
  })()
  return { stop: async () => { running = false; await loop; return answers } }
}

t.test('onError local: stopped mid-load, each process limits alone; restarted, shared again', async (t) => {
  const { redis, proxy } = await setUp(t, 'local')
  const background = load(`${proxy.url}/v1/sessions`)
  await sleep(300)
  await redis.stop()
  await waitForState(proxy, 'unavailable')
  t.match(await readyz(proxy), { status: 'ready', limits: { store: 'redis', redis: 'unavailable', onError: 'local' } }, 'still ready: requests are still decided')
  t.match((await get(`${proxy.url}/metrics`)).body, /pave_proxy_limits_store_up 0/)
  await sleep(1500)
  // The local budget (rate 1/s, burst 3) holds meanwhile.
  const during = await burst(`${proxy.url}/v1/sessions`, 6)
  t.ok((statuses(during)[429] ?? 0) >= 2, `the local limit refuses (${JSON.stringify(statuses(during))})`)
  await redis.start()
  await waitForState(proxy, 'available')
  const answers = await background.stop()
  t.same(Object.keys(statuses(answers)).sort(), ['200', '429'], 'only 200 and 429 throughout')
  const slowest = Math.max(...answers.map((a) => a.ms))
  t.ok(slowest < 1000, `nobody waited for Redis (slowest answer ${slowest.toFixed(0)} ms)`)
  await sleep(3100) // the restarted Redis is empty and the local state idle: a full burst
  t.same(statuses(await burst(`${proxy.url}/v1/sessions`, 4)), { 200: 3, 429: 1 }, 'the shared budget again')
  t.equal(lines(proxy, 'rate-limit store unavailable'), 1, 'logged once going down')
  t.equal(lines(proxy, 'rate-limit store available'), 2, 'and once each time it came up')
  t.match((await get(`${proxy.url}/metrics`)).body, /pave_proxy_limits_store_up 1/)
})

t.test('onError open: no limit while Redis is gone', async (t) => {
  const { redis, proxy } = await setUp(t, 'open')
  t.same(statuses(await burst(`${proxy.url}/x`, 4)), { 200: 3, 429: 1 })
  await redis.stop()
  await waitForState(proxy, 'unavailable')
  t.same(statuses(await burst(`${proxy.url}/x`, 8)), { 200: 8 }, 'everything admitted')
  t.match(proxy.logs.find((l) => l.includes('rate-limit store unavailable')), /"onError":"open".*not applied/)
})

t.test('onError closed: 503 PAVE_PROXY_LIMITS_UNAVAILABLE while Redis is gone, nothing reaches PAVE', async (t) => {
  const { redis, proxy, received } = await setUp(t, 'closed')
  await redis.stop()
  await waitForState(proxy, 'unavailable')
  const before = received()
  const answer = await get(`${proxy.url}/x`)
  t.equal(answer.status, 503)
  t.equal(answer.headers['x-pave-proxy-error'], 'PAVE_PROXY_LIMITS_UNAVAILABLE')
  t.equal(answer.headers['retry-after'], '1')
  t.same(JSON.parse(answer.body), { message: 'The rate-limit store is unavailable; retry later.', code: 'PAVE_PROXY_LIMITS_UNAVAILABLE' })
  t.equal(received(), before)
  t.equal((await readyz(proxy)).status, 'ready')
  await redis.start()
  await waitForState(proxy, 'available')
  t.equal((await get(`${proxy.url}/x`)).status, 200, 'recovered by itself')
})

t.test('CLIENT PAUSE: decisions give up after timeoutMs (default 50 ms) and fall back; the store returns after the pause', async (t) => {
  const { redis, proxy } = await setUp(t, 'local', 50)
  await redis.admin().call('CLIENT', 'PAUSE', '2500', 'ALL')
  const answers: Answer[] = []
  for (let i = 0; i < 5; i++) answers.push(await get(`${proxy.url}/x`))
  const slowest = Math.max(...answers.map((a) => a.ms))
  t.ok(slowest < 1000, `answered without waiting for the pause (slowest ${slowest.toFixed(0)} ms of a 2500 ms pause)`)
  t.same(Object.keys(statuses(answers)).sort(), ['200', '429'], 'decided locally: burst 3, then 429')
  t.equal((await readyz(proxy)).limits.redis, 'unavailable')
  await waitForState(proxy, 'available')
  t.equal(lines(proxy, 'rate-limit store unavailable'), 1)
  t.match(proxy.logs.find((l) => l.includes('rate-limit store unavailable')), /"reason":"ETIMEDOUT"/)
})
