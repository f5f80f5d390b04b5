/**
 * Overload: ten times the connections the upstream pool allows. Requests beyond
 * the pool wait in a bounded queue for a bounded time; the rest are answered at
 * once 503 PAVE_PROXY_OVERLOADED with Retry-After; the upstream never sees more
 * than the pool's connections at a time, and memory stays bounded.
 */
import t from 'tap'
import { SecretWatch, sleep, type WatchedResponse } from '../hostile/lib/watch.js'
import { MiB } from '../hostile/lib/resources.js'
import { AdmissionGate } from '../../src/inbound/admission.js'

const watch = new SecretWatch()

async function holdingUpstream (holdMs: number): Promise<{ url: string, peak: () => number, seen: () => number, close: () => Promise<void> }> {
  let active = 0
  let peak = 0
  let seen = 0
  const upstream = await watch.upstream({
    handler: (_req, res) => {
      active++
      seen++
      peak = Math.max(peak, active)
      setTimeout(() => { active--; res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}') }, holdMs)
    }
  })
  return { url: upstream.url, peak: () => peak, seen: () => seen, close: upstream.close }
}

function count (answers: WatchedResponse[], status: number): number {
  return answers.filter((a) => a.status === status).length
}

t.test('10x the pool: the pool runs, the queue waits, the rest get 503 at once', async (t) => {
  const upstream = await holdingUpstream(300)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CONNECTIONS: '4' }, overload: { maxQueued: 8, queueTimeoutMs: 2_000 } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const started = Date.now()
  const timed = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const answer = await watch.request(`${proxy.url}/v1/sessions/S${i}`)
    return { answer, ms: Date.now() - started }
  }))
  const answers = timed.map((x) => x.answer)
  t.equal(count(answers, 200), 12, 'the pool\'s 4 and the queue\'s 8 served')
  t.equal(count(answers, 503), 28, 'the rest refused')
  const refused = timed.filter((x) => x.answer.status === 503)
  t.ok(refused.every((x) => x.answer.headers['x-pave-proxy-error'] === 'PAVE_PROXY_OVERLOADED' && x.answer.headers['retry-after'] === '1'), 'with the code and Retry-After')
  t.ok(refused.every((x) => x.ms < 250), `refused at once (slowest ${Math.max(...refused.map((x) => x.ms))} ms)`)
  t.same(JSON.parse(refused[0]?.answer.body ?? '{}'), { message: 'The proxy is at capacity; retry later.', code: 'PAVE_PROXY_OVERLOADED' })
  t.equal(upstream.peak(), 4, 'never more than the pool upstream at once')
  t.ok(Math.max(...timed.map((x) => x.ms)) < 1_500, 'the queue drained in three rounds')
  t.ok(proxy.logs.some((l) => l.includes('at capacity: request refused')), 'refusals are logged')
  // Everything given back: a full pool's worth runs at once again.
  const again = Date.now()
  const next = await Promise.all(Array.from({ length: 4 }, async () => await watch.request(`${proxy.url}/v1/sessions/again`)))
  t.equal(count(next, 200), 4)
  t.ok(Date.now() - again < 600, 'no place was leaked')
})

t.test('a queued request that waits too long gets 503; one whose caller leaves frees its place', async (t) => {
  const upstream = await holdingUpstream(800)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CONNECTIONS: '2' }, overload: { maxQueued: 4, queueTimeoutMs: 300 } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const started = Date.now()
  const leaving = new AbortController()
  const running = Array.from({ length: 2 }, async () => await watch.request(`${proxy.url}/v1/hold`))
  await sleep(50)
  const gone = watch.request(`${proxy.url}/v1/gone`, { signal: leaving.signal }).catch((error: Error) => error)
  const waiting = Array.from({ length: 3 }, async () => await watch.request(`${proxy.url}/v1/wait`))
  await sleep(50)
  leaving.abort()
  t.type(await gone, Error, 'the caller left')
  const timedOut = await Promise.all(waiting)
  t.equal(count(timedOut, 503), 3, 'the waiters timed out')
  t.ok(Date.now() - started < 700, 'after the queue timeout, before the upstream answered')
  t.equal(count(await Promise.all(running), 200), 2)
  t.equal(upstream.seen(), 2, 'neither the waiters nor the caller who left reached the upstream')
})

t.test('memory stays bounded with 10x the pool on many connections', async (t) => {
  const upstream = await holdingUpstream(200)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CONNECTIONS: '16' }, overload: { maxQueued: 32, queueTimeoutMs: 5_000 } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const before = process.memoryUsage().rss
  let ok = 0
  let refused = 0
  for (let round = 0; round < 5; round++) {
    const answers = await Promise.all(Array.from({ length: 160 }, async (_, i) => await watch.request(`${proxy.url}/v1/sessions/R${round}-${i}`)))
    ok += count(answers, 200)
    refused += count(answers, 503)
  }
  const growth = process.memoryUsage().rss - before
  t.equal(ok + refused, 800, 'every request answered')
  t.equal(ok, 5 * 48, 'pool and queue served each round')
  t.equal(upstream.peak(), 16)
  t.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`)
})

t.test('the gate on its own: first come first served, every place given back once', async (t) => {
  const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 2, queueTimeoutMs: 10_000 })
  const events: string[] = []
  const a = gate.enter(() => events.push('a in'), () => events.push('a refused'))
  const b = gate.enter(() => events.push('b in'), () => events.push('b refused'))
  const c = gate.enter(() => events.push('c in'), () => events.push('c refused'))
  gate.enter(() => events.push('d in'), () => events.push('d refused'))
  t.same([gate.inFlight, gate.queued], [1, 2])
  b() // leaves the queue before its turn
  a()
  a() // twice: no effect
  t.same([gate.inFlight, gate.queued], [1, 0])
  c()
  c()
  t.same([gate.inFlight, gate.queued], [0, 0])
  t.same(events, ['a in', 'd refused', 'c in'])
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
