/**
 * Account limits with the memory store, through a real proxy: burst then 429 with
 * the exact headers, accounts with similar names kept apart, and PAVE's own 429
 * pausing the account.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { burst, get, sleep, startLimitedProxy, statuses } from './lib/setup.js'

t.test('burst, then 429 PAVE_PROXY_RATE_LIMITED with Retry-After, RateLimit-Policy and RateLimit; then the steady rate', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  // 2/s: a unit comes back only every 500 ms, so a slow machine does not refill the burst while it is sent.
  const proxy = await startLimitedProxy(upstream.url, [{ name: 'test', prefix: '/', limit: { requestsPerSecond: 2, burst: 5 } }])
  t.teardown(proxy.close)

  const first = await burst(`${proxy.url}/v1/sessions`, 5)
  t.same(statuses(first), { 200: 5 }, 'the burst passes')
  const refused = await get(`${proxy.url}/v1/sessions`)
  t.equal(refused.status, 429)
  t.equal(refused.headers['x-pave-proxy-error'], 'PAVE_PROXY_RATE_LIMITED')
  t.equal(refused.headers['retry-after'], '1', 'whole seconds, rounded up')
  t.equal(refused.headers['ratelimit-policy'], '"account";q=2;w=1;pave-burst=5')
  t.equal(refused.headers.ratelimit, '"account";r=0;t=1')
  t.same(JSON.parse(refused.body), { message: 'Too many requests: a rate limit of the proxy was reached; retry after the time in Retry-After.', code: 'PAVE_PROXY_RATE_LIMITED' })
  t.equal(upstream.received.length, 5, 'the refused request never reached PAVE')
})

t.test('the burst, then the steady rate: about 5 + 20 in a second at 20/s, never a second burst', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const proxy = await startLimitedProxy(upstream.url, [{ name: 'test', prefix: '/', limit: { requestsPerSecond: 20, burst: 5 } }])
  t.teardown(proxy.close)
  // Three at a time, again and again for about a second: more than 20/s asked, burst + 20/s given.
  const started = performance.now()
  let admitted = 0
  let sent = 0
  let lastSent = started
  while (performance.now() - started < 1000) {
    lastSent = performance.now()
    const answers = await burst(`${proxy.url}/v1/sessions`, 3)
    sent += 3
    admitted += answers.filter((a) => a.status === 200).length
    await sleep(10)
  }
  const elapsed = (lastSent - started) / 1000
  t.ok(admitted <= 5 + Math.ceil(20 * elapsed) + 1, `at most burst + rate × time (${admitted} of ${sent} in ${elapsed.toFixed(2)} s)`)
  t.ok(admitted >= Math.min(sent, 5 + Math.floor(20 * elapsed * 0.5)), `and the rate is held, not starved (${admitted})`)

  const line = proxy.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.status === 429)
  t.match(line, { msg: 'request completed', error: 'PAVE_PROXY_RATE_LIMITED', account: 'test' }, 'the access line records it')
  const metrics = await (await get(`${proxy.url}/metrics`)).body
  t.match(metrics, /pave_proxy_rate_limited_total\{caller="anonymous",account="test",scope="account"\} [1-9]/)
  t.match(metrics, /pave_proxy_limits_store_up 1/)
  t.match(JSON.parse((await get(`${proxy.url}/readyz`)).body), { status: 'ready', limits: { store: 'memory' } })
  t.equal((await get(`${proxy.url}/healthz`)).status, 200, 'the proxy\'s own endpoints are never limited')
})

t.test('accounts with similar names and prefixes never share a budget; an account without a limit has none', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const proxy = await startLimitedProxy(upstream.url, [
    { name: 'ops', prefix: '/ops', limit: { requestsPerSecond: 1, burst: 2 } },
    { name: 'ops-2', prefix: '/ops-2', limit: { requestsPerSecond: 1, burst: 2 } },
    { name: 'ops.2', prefix: '/ops.2' }
  ])
  t.teardown(proxy.close)
  t.same(statuses(await burst(`${proxy.url}/ops/v1/sessions`, 4)), { 200: 2, 429: 2 })
  t.same(statuses(await burst(`${proxy.url}/ops-2/v1/sessions`, 4)), { 200: 2, 429: 2 }, 'a full budget of its own')
  t.same(statuses(await burst(`${proxy.url}/ops.2/v1/sessions`, 6)), { 200: 6 }, 'no limit configured')
})

t.test('PAVE\'s 429 with Retry-After passes untouched and pauses the account: its callers get the proxy\'s 429 at once', async (t) => {
  let answer429 = true
  const upstream = await startUpstream({
    handler: (_req, res) => {
      if (answer429) {
        answer429 = false
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '2', 'x-pave': 'own' }).end('{"message":"slow down"}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    }
  })
  t.teardown(upstream.close)
  const proxy = await startLimitedProxy(upstream.url, [
    { name: 'paused', prefix: '/p', limit: { requestsPerSecond: 100, burst: 100 } },
    { name: 'other', prefix: '/o', limit: { requestsPerSecond: 100, burst: 100 } }
  ])
  t.teardown(proxy.close)

  const pave = await get(`${proxy.url}/p/v1/sessions`)
  t.equal(pave.status, 429)
  t.equal(pave.body, '{"message":"slow down"}', 'PAVE\'s body')
  t.equal(pave.headers['retry-after'], '2')
  t.equal(pave.headers['x-pave'], 'own')
  t.equal(pave.headers['x-pave-proxy-error'], undefined, 'not the proxy\'s answer')
  t.equal(pave.headers.ratelimit, undefined, 'nothing added')

  const during = await burst(`${proxy.url}/p/v1/sessions`, 3)
  t.same(statuses(during), { 429: 3 })
  for (const a of during) {
    t.equal(a.headers['x-pave-proxy-error'], 'PAVE_PROXY_RATE_LIMITED')
    t.match(a.headers['retry-after'], /^[12]$/)
    t.match(a.headers.ratelimit, /^"upstream";r=0;t=[12]$/)
    t.equal(a.headers['ratelimit-policy'], undefined)
  }
  t.equal(upstream.received.length, 1, 'nothing more reached PAVE for that account')
  t.equal((await get(`${proxy.url}/o/v1/sessions`)).status, 200, 'another account is not paused')
  await sleep(2100)
  t.equal((await get(`${proxy.url}/p/v1/sessions`)).status, 200, 'the pause ends')

  const pauses = proxy.logs.filter((l) => l.includes('PAVE answered 429'))
  t.equal(pauses.length, 1, 'logged once per pause')
  t.match(JSON.parse(pauses[0] as string), { account: 'paused', pauseMs: 2000 })
  const metrics = (await get(`${proxy.url}/metrics`)).body
  t.match(metrics, /pave_proxy_upstream_pauses_total\{account="paused"\} 1/)
  t.match(metrics, /pave_proxy_rate_limited_total\{caller="anonymous",account="paused",scope="upstream"\} 3/)
})

t.test('a PAVE 429 pauses at most 60 s; one without Retry-After, or on an account without a limit, pauses nothing', async (t) => {
  const retryAfter: Record<string, string | undefined> = { '/long': '3600', '/none': undefined, '/x': '30' }
  const upstream = await startUpstream({
    handler: (req, res) => {
      const value = retryAfter[req.url ?? '']
      res.writeHead(429, value !== undefined ? { 'retry-after': value } : {}).end()
    }
  })
  t.teardown(upstream.close)
  const proxy = await startLimitedProxy(upstream.url, [
    { name: 'a', prefix: '/a', limit: { requestsPerSecond: 100, burst: 100 } },
    { name: 'b', prefix: '/b', limit: { requestsPerSecond: 100, burst: 100 } },
    { name: 'n', prefix: '/n' }
  ])
  t.teardown(proxy.close)
  t.equal((await get(`${proxy.url}/a/none`)).status, 429)
  t.equal(upstream.received.length, 1)
  t.equal((await get(`${proxy.url}/a/long`)).headers['x-pave-proxy-error'], undefined, 'no pause without Retry-After: PAVE answered')
  const paused = await get(`${proxy.url}/a/next`)
  t.equal(paused.headers['x-pave-proxy-error'], 'PAVE_PROXY_RATE_LIMITED')
  t.equal(paused.headers['retry-after'], '60', 'capped at 60 s')
  t.equal((await get(`${proxy.url}/n/x`)).headers['x-pave-proxy-error'], undefined)
  t.equal((await get(`${proxy.url}/n/x`)).headers['x-pave-proxy-error'], undefined, 'an account without a limit is never paused')
})
