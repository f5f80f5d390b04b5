/**
 * Caller budgets through the real gateway (token callers): each caller its own
 * budget, all of them spending their account's, a caller's share of in-flight
 * requests, and the 429 in the access line, the audit line and the counter.
 */
import t from 'tap'
import { linesOf, startGateway, type Gateway } from '../gateway/lib/gateway.js'
import { startRedis } from '../helpers/redis.js'

const token = (name: string): string => `${name}-token-not-real-0123456789`
const caller = (name: string, extra: string[] = []): string[] => [
  `  - name: ${name}`,
  `    tokenFile: $DIR/${name}.tokens`,
  '    allow: [{ methods: ["*"], paths: ["/**"] }]',
  ...extra.map((line) => `    ${line}`)
]
const NAMES = ['intake', 'intake-2', 'reporting', 'batch', 'console']
const FILES = Object.fromEntries(NAMES.map((name) => [`${name}.tokens`, `${token(name)}\n`]))

async function gateway (t: Parameters<typeof startGateway>[0], limits: string[] = []): Promise<Gateway> {
  return await startGateway(t, {
    files: FILES,
    yaml: [
      '  - { name: default, prefix: /, limit: { requestsPerSecond: 1, burst: 5 } }',
      'callers:',
      ...caller('intake', ['limit: { requestsPerSecond: 1, burst: 2 }']),
      ...caller('intake-2', ['limit: { requestsPerSecond: 1, burst: 2 }']),
      ...caller('reporting'),
      ...caller('batch', ['maxInFlight: 2', 'limit: { requestsPerSecond: 0.5, burst: 3 }']),
      ...caller('console'),
      ...limits
    ]
  })
}

t.test('two callers with similar names have budgets of their own; the account budget is shared by all', async (t) => {
  const gw = await gateway(t)
  const as = async (name: string, count: number): Promise<Array<string | undefined>> => {
    const scopes: Array<string | undefined> = []
    for (let i = 0; i < count; i++) {
      const res = await gw.call('/test/v1/sessions', { token: token(name) })
      scopes.push(res.status === 200 ? 'ok' : /^"([\w-]+)"/.exec(String(res.headers.ratelimit))?.[1])
    }
    return scopes
  }
  t.same(await as('intake', 3), ['ok', 'ok', 'caller'], 'the /test account has no limit: the caller\'s own')
  t.same(await as('intake-2', 3), ['ok', 'ok', 'caller'], 'a budget of its own')
  const refused = await gw.call('/test/v1/sessions', { token: token('intake') })
  t.equal(refused.headers['ratelimit-policy'], '"caller";q=1;w=1;pave-burst=2')
  t.equal(refused.headers['x-pave-proxy-error'], 'PAVE_PROXY_RATE_LIMITED')

  // The default account: 5 at once, whoever spends them.
  const shared: string[] = []
  for (const name of ['reporting', 'reporting', 'console', 'console', 'reporting', 'console']) {
    const res = await gw.call('/v1/sessions', { token: token(name) })
    shared.push(res.status === 200 ? 'ok' : /^"(\w+)"/.exec(String(res.headers.ratelimit))?.[1] as string)
  }
  t.same(shared, ['ok', 'ok', 'ok', 'ok', 'ok', 'account'])

  const lines = linesOf(gw.proxy)
  const access = lines.find((l) => l.msg === 'request completed' && l.status === 429)
  t.match(access, { error: 'PAVE_PROXY_RATE_LIMITED', caller: 'intake' }, 'the access line')
  const audit = lines.filter((l) => l.audit === true && l.status === 429)
  t.ok(audit.length >= 4, 'every 429 in the audit trail')
  t.match(audit.find((l) => l.caller === 'console'), { proof: 'token', account: 'default', method: 'GET', path: '/v1/sessions', status: 429, code: 'PAVE_PROXY_RATE_LIMITED' })
  const metrics = (await gw.call('/metrics')).body
  t.match(metrics, /pave_proxy_rate_limited_total\{caller="intake",account="test",scope="caller"\} 2/)
  t.match(metrics, /pave_proxy_rate_limited_total\{caller="console",account="default",scope="account"\} 1/)
})

for (const store of ['memory', 'redis']) {
  t.test(`maxInFlight: a caller's share of the gate, given back after a refusal too (${store} store)`, async (t) => {
    let limits: string[] = []
    if (store === 'redis') {
      const redis = await startRedis()
      t.teardown(redis.close)
      limits = ['limits:', '  store: redis', `  redis: { url: "${redis.url}", timeoutMs: 1000 }`]
    }
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    const gw = await gateway(t, limits)
    if (store === 'redis') while (!(await gw.call('/readyz')).body.includes('"available"')) await new Promise((resolve) => setTimeout(resolve, 25))
    gw.upstream.server.removeAllListeners('request')
    let arrived = 0
    gw.upstream.server.on('request', (_req, res) => {
      arrived++
      void held.then(() => res.writeHead(200).end('{}'))
    })
    const first = [gw.call('/test/x', { token: token('batch') }), gw.call('/test/x', { token: token('batch') })]
    while (arrived < 2) await new Promise((resolve) => setTimeout(resolve, 10))
    const third = await gw.call('/test/x', { token: token('batch') })
    t.equal(third.status, 429)
    t.equal(third.headers['retry-after'], '1')
    t.equal(third.headers['ratelimit-policy'], '"caller-in-flight";q=2;qu="concurrent-requests"')
    t.equal(third.headers.ratelimit, '"caller-in-flight";r=0')
    const other = gw.call('/test/x', { token: token('console') })
    release()
    t.same((await Promise.all(first)).map((r) => r.status), [200, 200])
    t.equal((await other).status, 200, 'another caller passed')
    t.equal((await gw.call('/test/x', { token: token('batch') })).status, 200, 'places given back (the third unit of its burst)')
    // Its rate limit now refuses: the place taken for the decision is given back each time.
    for (let i = 0; i < 3; i++) t.match((await gw.call('/test/x', { token: token('batch') })).headers.ratelimit, /^"caller";r=0/)
    t.match((await gw.call('/metrics')).body, /pave_proxy_rate_limited_total\{caller="batch",account="test",scope="caller"\} 4/)
  })
}
