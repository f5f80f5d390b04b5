/** pave-mock's v2 "Resend SMS", as PAVE's docs describe it (see /work/shared/pave/API.md). */
import t from 'tap'
import { request } from 'undici'
import { startProxy } from '../helpers/proxy.js'
import { startPaveMock, type PaveMock } from '../../src/mock/server.js'
import { ALICE, BOB, FORBIDDEN, call } from './client.js'

const DAY = 86_400_000

async function session (mock: PaveMock, sms: Record<string, unknown> | null = { to: '647-455-0000' }): Promise<string> {
  const created = await call(mock, 'POST', '/v1/sessions', { body: sms === null ? {} : { sms } })
  return created.json.session_key as string
}

function resend (mock: PaveMock, key: string, options: { token?: string | false, body?: unknown } = {}): ReturnType<typeof call> {
  const token = options.token ?? mock.accounts[0]!.apiKey
  return call(mock, 'POST', `/v2/capture/sessions/${key}/resend`, {
    headers: token === false ? {} : { 'API-Access-Token': token },
    ...(options.body !== undefined ? { body: options.body } : {})
  })
}

t.test('one resend per session, to the session\'s phone or the one given', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE, BOB] })
  t.teardown(mock.close)
  const key = await session(mock)
  const first = await resend(mock, key)
  t.equal(first.status, 200)
  t.same(first.json, { status: 'success', message: 'SMS has been resent successfully.', session_key: key, phone: '647-455-0000', session_age_days: 0, days_remaining: 7 })
  const again = await resend(mock, key)
  t.equal(again.status, 400)
  t.match(again.json, { status: 'error', session_key: key, message: /already been resent/ })

  const other = await session(mock)
  const toGiven = await resend(mock, other, { body: { phone: '647-422-1111' } })
  t.equal(toGiven.status, 200)
  t.equal(toGiven.json.phone, '647-422-1111')
})

t.test('authentication: API-Access-Token must be a known API key; the v1 signature is not needed', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE, BOB] })
  t.teardown(mock.close)
  const key = await session(mock)
  for (const token of [false, '', 'unknown-key', ALICE.secret] as const) {
    const answer = await resend(mock, key, { token })
    t.equal(answer.status, 403, String(token))
    t.same(answer.json, FORBIDDEN)
  }
  t.same(mock.requests.slice(1).map((r) => r.rejected), ['missing-access-token', 'missing-access-token', 'unknown-access-token', 'unknown-access-token'])
  const asBob = await resend(mock, key, { token: BOB.apiKey })
  t.equal(asBob.status, 404, 'another account\'s session is not found')
  t.same(asBob.json, { status: 'error', message: 'Session not found', session_key: key })
  const withSignature = await call(mock, 'POST', `/v2/capture/sessions/${key}/resend`, { as: ALICE })
  t.equal(withSignature.status, 403, 'v1 headers alone do not authenticate v2')
})

t.test('unknown, finalized, expired, phoneless and malformed', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE] })
  t.teardown(mock.close)
  const unknown = await resend(mock, 'ZZZ-0000000000')
  t.equal(unknown.status, 404)
  t.same(unknown.json, { status: 'error', message: 'Session not found', session_key: 'ZZZ-0000000000' })

  for (const status of ['QC_PASSED', 'CONFIRM', 'COMPLETE', 'EXPIRED'] as const) {
    const key = await session(mock)
    mock.setSessionStatus(key, status)
    const answer = await resend(mock, key)
    t.equal(answer.status, 400, status)
    t.match(answer.json, { status: 'error', session_key: key, session_status: status, message: /finalized/ })
  }
  for (const status of ['IN_PROGRESS', 'STARTED', 'PROCESS'] as const) {
    const key = await session(mock)
    mock.setSessionStatus(key, status)
    t.equal((await resend(mock, key)).status, 200, `${status} is not final`)
  }

  const old = await session(mock)
  const aging = await session(mock)
  mock.setClockOffsetMs(7 * DAY - 60_000) // a minute short of 7 days: still allowed
  const almost = await resend(mock, aging)
  t.equal(almost.status, 200)
  t.match(almost.json, { session_age_days: 6, days_remaining: 1 })
  mock.setClockOffsetMs(8 * DAY + 1000)
  const expired = await resend(mock, old)
  t.equal(expired.status, 400)
  t.match(expired.json, { status: 'error', session_key: old, session_age_days: 8, message: /older than 7 days/ })
  mock.setClockOffsetMs(0)

  const phoneless = await session(mock, null)
  const noPhone = await resend(mock, phoneless)
  t.equal(noPhone.status, 400)
  t.match(noPhone.json, { status: 'error', message: /No phone number/ })
  for (const body of ['[1]', { phone: 42 }, { phone: '' }]) {
    const answer = await resend(mock, phoneless, { body })
    t.equal(answer.status, 400, JSON.stringify(body))
    t.match(answer.json, { status: 'error', session_key: phoneless })
  }
})

t.test('through pave-proxy: the caller sends no credential, the resend is authenticated by the account\'s key', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE] })
  const proxy = await startProxy({ upstreamUrl: mock.url, account: ALICE })
  t.teardown(async () => { await proxy.close(); await mock.close() })
  const created = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{"sms":{"to":"647-455-0000"}}', headers: { 'content-type': 'application/json' } })
  const key = (await created.body.json() as { session_key: string }).session_key
  const resent = await request(`${proxy.url}/v2/capture/sessions/${key}/resend`, { method: 'POST', headers: { 'API-Access-Token': BOB.apiKey } })
  t.equal(resent.statusCode, 200)
  t.match(await resent.body.json(), { status: 'success', session_key: key, phone: '647-455-0000' })
  t.equal(mock.requests.at(-1)?.headers['api-access-token'], ALICE.apiKey, 'the caller\'s token replaced by the account\'s key')
  t.equal(mock.requests.at(-1)?.username, ALICE.username)
  const again = await request(`${proxy.url}/v2/capture/sessions/${key}/resend`, { method: 'POST' })
  t.equal(again.statusCode, 400, 'PAVE\'s 400 passes through')
  t.match(await again.body.json(), { status: 'error', session_key: key })
})
