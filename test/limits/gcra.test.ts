/** The GCRA on a clock of the test's: burst, then the steady rate, never a second burst at a window edge. */
import t from 'tap'
import { limitRule, retryAfterSeconds } from '../../src/inbound/limits/gcra.js'
import { MemoryLimitStore } from '../../src/inbound/limits/memory-store.js'
import { limitKey, type LimitPlan } from '../../src/inbound/limits/plan.js'
import { policyField, rateLimited, retryAfterMs } from '../../src/inbound/limits/stage.js'

const SECOND = 1_000_000
function plan (...budgets: Array<[string, number, number]>): LimitPlan {
  return {
    keys: budgets.map(([key]) => key),
    rules: budgets.map(([, requestsPerSecond, burst]) => limitRule({ requestsPerSecond, burst })),
    scopes: budgets.map(([key]) => (key.startsWith('c') ? 'caller' : 'account')),
    pauseKey: 'pause'
  }
}

t.test('a burst passes at once, then one request per interval, and an idle budget refills to the burst only', async (t) => {
  let now = 10 * SECOND
  const store = new MemoryLimitStore(() => now)
  const p = plan(['a', 20, 5])
  for (let i = 0; i < 5; i++) t.equal(store.decide(p), undefined, `burst request ${i + 1}`)
  t.same(store.decide(p), { scope: 'account', rule: 0, waitMs: 50 }, 'the sixth waits one interval (50 ms at 20/s)')
  now += 49_000
  t.equal(store.decide(p)?.scope, 'account', 'still refused 1 ms early')
  now += 1000
  t.equal(store.decide(p), undefined, 'admitted after exactly one interval')
  t.equal(store.decide(p)?.scope, 'account', 'and only one')
  // Steady: 100 attempts each 10 ms over 1 s admit 20.
  let admitted = 0
  for (let i = 0; i < 100; i++) {
    now += 10_000
    if (store.decide(p) === undefined) admitted++
  }
  t.equal(admitted, 20, 'the steady rate over one second')
  // A long silence gives back the burst, never more (no window edge with a second burst).
  now += 60 * SECOND
  let again = 0
  while (store.decide(p) === undefined) again++
  t.equal(again, 5, 'after a minute idle: the burst again, not more')
})

t.test('a request spends every budget of its plan or none', async (t) => {
  let now = SECOND
  const store = new MemoryLimitStore(() => now)
  const callerA = plan(['ca', 10, 2], ['acct', 10, 3])
  const callerB = plan(['cb', 10, 2], ['acct', 10, 3])
  t.equal(store.decide(callerA), undefined)
  t.equal(store.decide(callerA), undefined)
  t.same(store.decide(callerA), { scope: 'caller', rule: 0, waitMs: 100 }, 'caller A spent its own burst')
  t.equal(store.decide(callerB), undefined, 'caller B takes the account\'s last unit')
  t.same(store.decide(callerB), { scope: 'account', rule: 1, waitMs: 100 }, 'the account budget is shared')
  t.equal(store.decide(plan(['cb', 10, 2]))?.scope, undefined, 'B\'s own budget was not spent by the refused request')
  now += 100_000
  t.equal(store.decide(callerA), undefined, 'one interval later, one more')
})

t.test('pauses: never shortened, reported once, and they refuse with the time left', async (t) => {
  let now = SECOND
  const store = new MemoryLimitStore(() => now)
  const p = plan(['a', 10, 10])
  t.equal(store.pause('pause', 2000), true, 'a new pause')
  t.equal(store.pause('pause', 500), false, 'already paused: not a new pause, and not shortened')
  t.same(store.decide(p), { scope: 'upstream', rule: -1, waitMs: 2000 })
  now += 1500 * 1000
  t.same(store.decide(p), { scope: 'upstream', rule: -1, waitMs: 500 })
  now += 500 * 1000
  t.equal(store.decide(p), undefined, 'over')
  t.equal(store.pausedMs('pause'), 0)
  t.same(store.state(), { store: 'memory' })
  await store.close()
})

t.test('keys never collide between kinds or similar names', async (t) => {
  const keys = new Set([
    limitKey('p:', 'caller', 'ops'), limitKey('p:', 'account', 'ops'), limitKey('p:', 'pause', 'ops'),
    limitKey('p:', 'account', 'ops"'), limitKey('p:', 'account', 'ops,'), limitKey('p:', 'account', 'o'),
    limitKey('p:', 'caller', 'ops-a'), limitKey('p:', 'caller', 'ops","a')
  ])
  t.equal(keys.size, 8)
  t.equal(limitKey('pave-proxy:', 'account', 'test'), 'pave-proxy:["account","test"]')
})

t.test('rules, policy fields and Retry-After', async (t) => {
  t.same(limitRule({ requestsPerSecond: 50 }), { requestsPerSecond: 50, burst: 50, intervalUs: 20_000, limitUs: 1_000_000 }, 'burst defaults to the rate')
  t.equal(limitRule({ requestsPerSecond: 0.5 }).burst, 1, 'at least one')
  t.equal(policyField('account', limitRule({ requestsPerSecond: 20, burst: 40 })), '"account";q=20;w=1;pave-burst=40')
  t.equal(policyField('caller', limitRule({ requestsPerSecond: 0.25, burst: 2 })), '"caller";q=1;w=4;pave-burst=2')
  t.equal(policyField('caller', limitRule({ requestsPerSecond: 2.5, burst: 3 })), '"caller";q=2;w=1;pave-burst=3')
  t.same(rateLimited('upstream', undefined, 1200), { code: 'PAVE_PROXY_RATE_LIMITED', headers: { 'retry-after': '2', ratelimit: '"upstream";r=0;t=2' } })
  t.equal(retryAfterSeconds(1), 1)
  t.equal(retryAfterSeconds(1000), 1)
  t.equal(retryAfterSeconds(1001), 2)
  const now = Date.parse('2026-12-01T20:00:00Z')
  t.equal(retryAfterMs('7', now), 7000)
  t.equal(retryAfterMs([' 3 '], now), 3000)
  t.equal(retryAfterMs('Tue, 01 Dec 2026 20:00:05 GMT', now), 5000)
  t.equal(retryAfterMs('soon', now), undefined)
  t.equal(retryAfterMs('', now), undefined)
  t.equal(retryAfterMs(undefined, now), undefined)
})
