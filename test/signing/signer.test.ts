import t from 'tap'
import { request } from 'undici'
import { Signer } from '../../src/signing/signer.js'
import { computeToken } from '../../src/signing/pave-token.js'
import type { AccountConfig } from '../../src/config/schema.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

const account: AccountConfig = { name: 'default', prefix: '/', username: 'acme', apiKey: 'abcd1234', apiSecret: 's3cr3t' }

t.test('one token is reused until lifetime - margin, then renewed', async (t) => {
  let now = Date.UTC(2023, 1, 11, 12, 0, 0, 500)
  const renewed: string[] = []
  const signer = new Signer({ tokenLifetimeSeconds: 300, refreshMarginSeconds: 60, now: () => now, onRenew: (a) => renewed.push(a.name) })
  const first = signer.sign(account)
  t.same(first, { 'api-key': 'abcd1234', 'api-timestamp': '2023-02-11T12:00:00Z', 'api-token': '3831a28fd9bb537826cee158a2fb45722de6992c95bfa83529e87e20b53a5fbb' })
  now += 239_000 // 12:03:59.5: still within 240 s of the (truncated) timestamp
  t.equal(signer.sign(account), first, 'the same object is reused')
  now += 500 // 12:04:00.0: 240 s after the timestamp
  const second = signer.sign(account)
  t.equal(second['api-timestamp'], '2023-02-11T12:04:00Z')
  t.equal(second['api-token'], computeToken({ username: 'acme', apiKey: 'abcd1234', secret: 's3cr3t' }, '2023-02-11T12:04:00Z'))
  t.same(renewed, ['default', 'default'])
  t.equal(signer.cachedTimestamp('default'), '2023-02-11T12:04:00Z')
})

t.test('a changed account object (reload) is signed afresh; invalidate forgets', async (t) => {
  const now = Date.UTC(2023, 1, 11, 12, 0, 0)
  const signer = new Signer({ tokenLifetimeSeconds: 300, refreshMarginSeconds: 60, now: () => now })
  const before = signer.sign(account)
  const rotated: AccountConfig = { ...account, apiSecret: 'rotated-secret' }
  const after = signer.sign(rotated)
  t.not(after['api-token'], before['api-token'])
  t.equal(after['api-token'], computeToken({ username: 'acme', apiKey: 'abcd1234', secret: 'rotated-secret' }, after['api-timestamp']))
  t.equal(signer.sign(rotated), after)
  signer.invalidate('default')
  t.equal(signer.cachedTimestamp('default'), undefined)
  signer.sign(rotated)
  signer.invalidate()
  t.equal(signer.cachedTimestamp('default'), undefined)
})

t.test('the clock offset shifts timestamps, and a moved offset re-mints', async (t) => {
  const now = Date.UTC(2023, 1, 11, 12, 0, 0)
  let offset = 600_000
  const signer = new Signer({ tokenLifetimeSeconds: 300, refreshMarginSeconds: 60, now: () => now, clockOffsetMs: () => offset })
  t.equal(signer.sign(account)['api-timestamp'], '2023-02-11T12:10:00Z')
  offset = 601_000
  t.equal(signer.sign(account)['api-timestamp'], '2023-02-11T12:10:00Z', 'a small change keeps the token')
  offset = -5_000
  t.equal(signer.sign(account)['api-timestamp'], '2023-02-11T11:59:55Z', 'a large change re-mints at once')
})

t.test('through the proxy: reuse within the window, renewal after the clock moves', async (t) => {
  let now = Date.now()
  const upstream = await startUpstream({ now: () => now })
  // The test upstream's Date header tells real time: keep clock-skew learning out of this test.
  const proxy = await startProxy({ upstreamUrl: upstream.url, now: () => now, env: { PAVE_CLOCK_SKEW_CORRECTION: 'false' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const call = async (): Promise<void> => {
    const res = await request(`${proxy.url}/v1/callbacks`)
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  await call()
  now += 60_000
  await call()
  now += 170_000
  await call()
  now += 30_000 // 260 s after the first mint: past lifetime - margin
  await call()
  const timestamps = upstream.received.map((r) => r.headers['api-timestamp'])
  t.equal(timestamps[0], timestamps[1])
  t.equal(timestamps[1], timestamps[2])
  t.not(timestamps[3], timestamps[2], 'renewed')
  t.ok(upstream.received.every((r) => r.signedBy === ACCOUNT.username), 'every call verified by the upstream')
})
