/**
 * Caller budgets: each caller its own, all of them spending their account's. The
 * identity stage belongs to the callers work; here a stand-in sets `request.caller`
 * (the contract between the two) ahead of the real limits stage, over real sockets.
 */
import t from 'tap'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { request } from 'undici'
import { testConfig } from '../helpers/proxy.js'
import { createInboundPipeline, type InboundStage } from '../../src/inbound/pipeline.js'
import { createLimits } from '../../src/inbound/limits/stage.js'
import { createMetrics } from '../../src/observe/metrics.js'
import type { Config } from '../../src/config/schema.js'
import { get, statuses } from './lib/setup.js'

async function start (t: { teardown: (fn: () => unknown) => void }, callers: unknown[], accountLimit?: { requestsPerSecond: number, burst: number }): Promise<{ url: string, metrics: ReturnType<typeof createMetrics> }> {
  const base = testConfig({ upstreamUrl: 'http://127.0.0.1:1' })
  const config = { ...base, callers, accounts: base.accounts.map((a) => ({ ...a, limit: accountLimit })) } as unknown as Config
  const metrics = createMetrics({ processMetrics: false })
  const limits = createLimits(config, { log: pino({ level: 'silent' }), metrics })
  if (limits === undefined) throw new Error('expected limits')
  const identity: InboundStage = {
    name: 'identity (stand-in)',
    check (request) {
      const name = request.headers['x-test-caller']
      if (typeof name === 'string') (request as unknown as { caller: { name: string, proof: string } }).caller = { name, proof: 'token' }
      return undefined
    }
  }
  const app = Fastify()
  const pipeline = createInboundPipeline([identity, limits.stage])
  app.addHook('onRequest', (request, reply, done) => { pipeline(request, reply, done) })
  app.get('/*', { config: { account: 'default' } }, async () => ({ ok: true }))
  app.get('/local', async () => ({ local: true }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close(); await limits.close() })
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, metrics }
}

async function as (url: string, caller: string | undefined, count: number): Promise<Array<{ status: number, scope: string | undefined }>> {
  const answers = []
  for (let i = 0; i < count; i++) {
    const response = await request(`${url}/v1/sessions`, { headers: caller !== undefined ? { 'x-test-caller': caller } : {} })
    await response.body.dump()
    answers.push({ status: response.statusCode, scope: /^"(\w+)"/.exec(String(response.headers.ratelimit ?? ''))?.[1] })
  }
  return answers
}

t.test('two callers, each its own budget, with names that differ by one character', async (t) => {
  const { url, metrics } = await start(t, [
    { name: 'intake', limit: { requestsPerSecond: 1, burst: 2 } },
    { name: 'intake-', limit: { requestsPerSecond: 1, burst: 2 } },
    { name: 'reporting' }
  ])
  t.same(await as(url, 'intake', 3), [{ status: 200, scope: undefined }, { status: 200, scope: undefined }, { status: 429, scope: 'caller' }])
  t.same((await as(url, 'intake-', 3)).map((a) => a.status), [200, 200, 429], 'a budget of its own')
  t.same((await as(url, 'reporting', 5)).map((a) => a.status), [200, 200, 200, 200, 200], 'a caller without a limit, on an account without one')
  t.same((await as(url, undefined, 3)).map((a) => a.status), [200, 200, 200], 'no caller: no caller budget')
  const policy = await request(`${url}/v1/sessions`, { headers: { 'x-test-caller': 'intake' } })
  await policy.body.dump()
  t.equal(policy.headers['ratelimit-policy'], '"caller";q=1;w=1;pave-burst=2')
  t.match(await metrics.registry.metrics(), /pave_proxy_rate_limited_total\{caller="intake",account="default",scope="caller"\} 2/)
  t.equal((await get(`${url}/local`)).status, 200, 'a route without an account is never limited')
})

t.test('the account budget is shared by its callers; a refusal spends neither budget', async (t) => {
  const { url, metrics } = await start(t, [
    { name: 'a', limit: { requestsPerSecond: 1, burst: 2 } },
    { name: 'b', limit: { requestsPerSecond: 1, burst: 5 } }
  ], { requestsPerSecond: 1, burst: 3 })
  t.same((await as(url, 'a', 2)).map((a) => a.status), [200, 200])
  t.same(await as(url, 'b', 3), [{ status: 200, scope: undefined }, { status: 429, scope: 'account' }, { status: 429, scope: 'account' }], 'b has its own budget left, the account has not')
  t.same(await as(url, 'a', 1), [{ status: 429, scope: 'caller' }])
  t.match(await metrics.registry.metrics(), /pave_proxy_rate_limited_total\{caller="b",account="default",scope="account"\} 2/)
})
