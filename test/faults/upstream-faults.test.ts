/**
 * Upstream faults, through the PAVE mock's fault rules (and a raw socket for the
 * keep-alive race): refused, reset before headers, reset mid-body, hung before
 * headers, hung mid-body, slow, idle connections closed early. Each ends in the
 * documented 502/504 or an aborted response within its timeout, never a hang; the
 * pool recovers and the next request succeeds.
 */
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { startPaveMock, type PaveMock } from '../../src/mock/server.js'
import type { FaultRule } from '../../src/mock/faults.js'
import { SecretWatch, sleep } from '../hostile/lib/watch.js'
import { startRawUpstream } from '../hostile/lib/raw-upstream.js'
import { ACCOUNT } from '../helpers/upstream.js'

const watch = new SecretWatch()
const TIMEOUT_MS = 600
const IDLE_TIMEOUT_MS = 600

async function mockWith (faults: FaultRule[]): Promise<PaveMock> {
  const mock = await startPaveMock({ accounts: [{ username: ACCOUNT.username, apiKey: ACCOUNT.apiKey, secret: ACCOUNT.secret }], faults })
  return mock
}

/** Harvests the tokens the mock received, for the secret watch. */
function harvest (mock: PaveMock): void {
  for (const request of mock.requests) watch.harvest(`api-token: ${String(request.headers['api-token'])}\r\n`)
}

t.test('each fault ends as documented, within its timeout, and the next request succeeds', async (t) => {
  const mock = await mockWith([
    { path: '/v1/sessions/RESET-BEFORE', reset: 'before-headers' },
    { path: '/v1/sessions/RESET-MID', reset: 'mid-body' },
    { path: '/v1/sessions/HANG-BEFORE', hang: 'before-headers' },
    { path: '/v1/sessions/HANG-MID', hang: 'mid-body' },
    { path: '/v1/sessions/SLOW', latencyMs: TIMEOUT_MS / 2 },
    { path: '/v1/sessions/TOO-SLOW', latencyMs: TIMEOUT_MS * 3 },
    { path: '/v1/sessions/UNAVAILABLE', status: 503 }
  ])
  const proxy = await watch.proxy({
    upstreamUrl: mock.url,
    env: { PAVE_UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS), PAVE_UPSTREAM_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS), PAVE_UPSTREAM_RETRIES: '0' }
  })
  t.teardown(async () => { await proxy.close(); await mock.close() })
  const cases: Array<[string, { status: number, code?: string, aborted?: boolean, maxMs: number, minMs?: number }]> = [
    ['RESET-BEFORE', { status: 502, code: 'PAVE_PROXY_UPSTREAM_UNREACHABLE', maxMs: 300 }],
    ['RESET-MID', { status: 404, aborted: true, maxMs: 500 }],
    ['HANG-BEFORE', { status: 504, code: 'PAVE_PROXY_UPSTREAM_TIMEOUT', minMs: TIMEOUT_MS - 50, maxMs: TIMEOUT_MS + 700 }],
    ['HANG-MID', { status: 404, aborted: true, minMs: IDLE_TIMEOUT_MS - 50, maxMs: IDLE_TIMEOUT_MS + 1_700 }],
    ['SLOW', { status: 404, minMs: TIMEOUT_MS / 2 - 50, maxMs: TIMEOUT_MS }],
    ['TOO-SLOW', { status: 504, code: 'PAVE_PROXY_UPSTREAM_TIMEOUT', minMs: TIMEOUT_MS - 50, maxMs: TIMEOUT_MS + 700 }],
    ['UNAVAILABLE', { status: 503, maxMs: 300 }]
  ]
  for (const [key, expected] of cases) {
    for (const method of ['GET', 'DELETE'] as const) {
      const started = Date.now()
      const res = await watch.request(`${proxy.url}/v1/sessions/${key}`, { method })
      const elapsed = Date.now() - started
      t.equal(res.status, expected.status, `${method} ${key}: ${expected.status}`)
      if (expected.code !== undefined) t.equal(res.headers['x-pave-proxy-error'], expected.code, `${key}: ${expected.code}`)
      if (expected.code === undefined) t.notOk('x-pave-proxy-error' in res.headers, `${key}: PAVE's own answer`)
      t.equal(res.bodyError !== undefined, expected.aborted === true, `${key}: body ${expected.aborted === true ? 'aborted' : 'complete'}`)
      t.ok(elapsed <= expected.maxMs && elapsed >= (expected.minMs ?? 0), `${key}: after ${elapsed} ms`)
      const next = await watch.request(`${proxy.url}/v1/callbacks`)
      t.equal(next.status, 200, `${key}: the next request succeeds`)
    }
  }
  harvest(mock)
})

t.test('a refused connection is 502 (after the configured retries for a GET), and the pool recovers when the upstream is back', async (t) => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const proxy = await watch.proxy({ upstreamUrl: `http://127.0.0.1:${port}`, env: { PAVE_UPSTREAM_RETRIES: '2' } })
  t.teardown(async () => { await proxy.close() })
  const started = Date.now()
  const refused = await watch.request(`${proxy.url}/v1/callbacks`)
  t.equal(refused.status, 502)
  t.equal(refused.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  t.ok(Date.now() - started < 1_500, 'retries are bounded')
  const post = await watch.request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(post.status, 502, 'a POST is not retried')
  const mock = await startPaveMock({ accounts: [{ username: ACCOUNT.username, apiKey: ACCOUNT.apiKey, secret: ACCOUNT.secret }], port })
  t.teardown(async () => { await mock.close() })
  const back = await watch.request(`${proxy.url}/v1/callbacks`)
  t.equal(back.status, 200, 'the upstream is back: the next request succeeds')
  harvest(mock)
})

t.test('an upstream that closes idle keep-alive connections early: never a hang, at worst a 502, and the next request succeeds', async (t) => {
  const upstream = await startRawUpstream((socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    // Closes the connection after 100 ms of idleness, without a Keep-Alive hint.
    clearTimeout((socket as unknown as { idle?: NodeJS.Timeout }).idle)
    ;(socket as unknown as { idle?: NodeJS.Timeout }).idle = setTimeout(() => socket.end(), 100)
  })
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const outcomes = { ok: 0, unreachable: 0 }
  for (let i = 0; i < 40; i++) {
    await sleep(90 + (i % 5) * 5) // around the moment the upstream closes
    const started = Date.now()
    const res = await watch.request(`${proxy.url}/v1/callbacks`)
    t.ok(Date.now() - started < 1_000, 'answered promptly')
    if (res.status === 200) outcomes.ok++
    else if (res.status === 502 && res.headers['x-pave-proxy-error'] === 'PAVE_PROXY_UPSTREAM_UNREACHABLE') outcomes.unreachable++
    else t.fail(`unexpected ${res.status}`)
  }
  t.equal(outcomes.ok + outcomes.unreachable, 40, `${outcomes.ok} succeeded, ${outcomes.unreachable} lost the race (502)`)
  t.equal((await watch.request(`${proxy.url}/v1/callbacks`)).status, 200, 'the next request succeeds')
  for (const heads of upstream.heads) watch.harvest(heads)
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
