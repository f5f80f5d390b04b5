/** pave-mock checks every request the way PAVE documents it, and answers PAVE's 403 otherwise. */
import t from 'tap'
import fc from 'fast-check'
import { computeToken, formatTimestamp } from '../../src/signing/pave-token.js'
import { startPaveMock } from '../../src/mock/server.js'
import { tokensEqual, verifyRequest } from '../../src/mock/verify.js'
import { ALICE, BOB, FORBIDDEN_TEXT, call, signedHeaders } from './client.js'

t.test('a correctly signed request is accepted; every kind of bad signature gets 403 and PAVE\'s body', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE, BOB] })
  t.teardown(mock.close)

  const ok = await call(mock, 'GET', '/v1/callbacks')
  t.equal(ok.status, 200)
  t.equal(mock.requests.at(-1)?.username, ALICE.username)
  t.equal((await call(mock, 'GET', '/v1/callbacks', { as: BOB })).json.api_key, BOB.apiKey, 'a second account signs too')

  const now = Date.now()
  const cases: Array<[string, Record<string, string>, string]> = [
    ['wrong key', signedHeaders({ ...ALICE, apiKey: 'nobody-key-not-real' }), 'unknown-api-key'],
    ['wrong secret', signedHeaders({ ...ALICE, secret: 'wrong-secret-not-real' }), 'wrong-token'],
    ['wrong username', signedHeaders({ ...ALICE, username: 'mallory' }), 'wrong-token'],
    ['another account\'s key with this account\'s secret', signedHeaders({ ...ALICE, apiKey: BOB.apiKey }), 'wrong-token'],
    ['stale timestamp', signedHeaders(ALICE, new Date(now - 301_000)), 'stale-timestamp'],
    ['future timestamp', signedHeaders(ALICE, new Date(now + 302_000)), 'future-timestamp'],
    ['token in upper case', upper(signedHeaders(ALICE)), 'wrong-token'],
    ['truncated token', { ...signedHeaders(ALICE), 'API-Token': signedHeaders(ALICE)['API-Token']!.slice(0, 63) }, 'wrong-token'],
    ['no headers', {}, 'missing-headers'],
    ['empty token', { ...signedHeaders(ALICE), 'API-Token': '' }, 'missing-headers']
  ]
  for (const name of ['API-Key', 'API-Timestamp', 'API-Token']) {
    const headers = signedHeaders(ALICE)
    delete headers[name]
    cases.push([`missing ${name}`, headers, 'missing-headers'])
  }
  const ts = formatTimestamp(new Date(now))
  for (const malformed of [
    ts.replace('Z', '.000Z'), ts.replace('Z', '+00:00'), String(Math.floor(now / 1000)), ts.replace('T', ' '),
    ts.slice(0, -1), '2023-02-30T12:00:00Z', new Date(now).toUTCString()
  ]) {
    cases.push([`malformed timestamp ${malformed}`, { 'API-Key': ALICE.apiKey, 'API-Timestamp': malformed, 'API-Token': computeToken(ALICE, malformed) }, 'malformed-timestamp'])
  }

  for (const [name, headers, reason] of cases) {
    const res = await call(mock, 'GET', '/v1/callbacks', { headers })
    t.equal(res.status, 403, name)
    t.equal(res.text, FORBIDDEN_TEXT, `${name}: PAVE's body, byte for byte`)
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
    t.equal(mock.requests.at(-1)?.rejected, reason, `${name}: recorded as ${reason}`)
  }
  t.equal(mock.requests.filter((r) => r.username !== undefined).length, 2, 'only the good ones verified')
})

t.test('the check comes before routing: an unknown path answers 403 unsigned and 404 signed', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  t.equal((await call(mock, 'GET', '/v9/nothing', { as: false })).status, 403)
  const signed = await call(mock, 'GET', '/v9/nothing')
  t.equal(signed.status, 404)
  t.same(signed.json, { message: 'The route v9/nothing could not be found.' })
})

t.test('the lifetime holds in both directions, at its boundary, and is configurable', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE], tokenLifetimeSeconds: 60 })
  t.teardown(mock.close)
  // The timestamp has whole seconds; keep 2 s of margin from the boundary.
  t.equal((await call(mock, 'GET', '/v1/callbacks', { headers: signedHeaders(ALICE, new Date(Date.now() - 58_000)) })).status, 200)
  t.equal((await call(mock, 'GET', '/v1/callbacks', { headers: signedHeaders(ALICE, new Date(Date.now() + 58_000)) })).status, 200)
  t.equal((await call(mock, 'GET', '/v1/callbacks', { headers: signedHeaders(ALICE, new Date(Date.now() - 62_000)) })).status, 403)
  t.equal((await call(mock, 'GET', '/v1/callbacks', { headers: signedHeaders(ALICE, new Date(Date.now() + 62_000)) })).status, 403)

  const account = new Map([[ALICE.apiKey, ALICE]])
  const at = Date.parse('2023-02-11T12:00:00Z')
  const headers = Object.fromEntries(Object.entries(signedHeaders(ALICE, new Date(at))).map(([k, v]) => [k.toLowerCase(), v]))
  t.ok(verifyRequest(headers, account, at + 300_000, 300_000).ok, 'exactly the lifetime old: accepted')
  t.ok(verifyRequest(headers, account, at - 300_000, 300_000).ok, 'exactly the lifetime ahead: accepted')
  t.notOk(verifyRequest(headers, account, at + 300_001, 300_000).ok, 'a millisecond more: refused')
})

t.test('a clock offset moves the mock\'s clock: signature window and Date header', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE], clockOffsetMs: 10 * 60_000 })
  t.teardown(mock.close)
  const res = await call(mock, 'GET', '/v1/callbacks')
  t.equal(res.status, 403, 'a request signed with real time is stale for a clock 10 minutes ahead')
  t.equal(mock.requests[0]?.rejected, 'stale-timestamp')
  const date = Date.parse(res.headers.date as string)
  t.ok(Math.abs(date - (Date.now() + 10 * 60_000)) < 5_000, 'Date header shows the mock\'s clock')
  t.equal((await call(mock, 'GET', '/v1/callbacks', { headers: signedHeaders(ALICE, new Date(mock.now())) })).status, 200, 'signed with the mock\'s clock: accepted')

  mock.setClockOffsetMs(-10 * 60_000)
  t.equal(mock.requests.length, 2)
  const behind = await call(mock, 'GET', '/v1/callbacks')
  t.equal(behind.status, 403)
  t.equal(mock.requests.at(-1)?.rejected, 'future-timestamp', 'a clock behind sees real time as the future')
  mock.setClockOffsetMs(0)
  t.equal((await call(mock, 'GET', '/v1/callbacks')).status, 200)
})

t.test('what was received is recorded: method, url, path, headers, body', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE] })
  t.teardown(mock.close)
  await call(mock, 'POST', '/v1/sessions?x=1', { body: { vehicle: { vin: 'JN1CV6AR9BMXXXXXX' } } })
  const [received] = mock.requests
  t.equal(received?.method, 'POST')
  t.equal(received?.url, '/v1/sessions?x=1')
  t.equal(received?.path, '/v1/sessions')
  t.equal(received?.headers['api-key'], ALICE.apiKey)
  t.ok(received?.rawHeaders.includes('API-Key'), 'raw header names as sent')
  t.same(received?.body, { vehicle: { vin: 'JN1CV6AR9BMXXXXXX' } })
  t.equal(received?.fault, undefined)
  mock.reset()
  t.equal(mock.requests.length, 0, 'reset() forgets them')
})

t.test('property: whatever the credentials, the mock accepts exactly the right token', async () => {
  const text = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\r\n]/.test(s))
  fc.assert(fc.property(text, text, text, fc.integer({ min: 0, max: 4_000_000_000 }), fc.nat(63), (username, apiKey, secret, seconds, index) => {
    const account = { username, apiKey, secret }
    const at = seconds * 1000
    const timestamp = formatTimestamp(new Date(at))
    const token = computeToken(account, timestamp)
    const accounts = new Map([[apiKey, account]])
    const headers = { 'api-key': apiKey, 'api-timestamp': timestamp, 'api-token': token }
    const flipped = token.slice(0, index) + (token[index] === '0' ? '1' : '0') + token.slice(index + 1)
    return verifyRequest(headers, accounts, at, 300_000).ok &&
      !verifyRequest({ ...headers, 'api-token': flipped }, accounts, at, 300_000).ok &&
      !verifyRequest(headers, new Map([[apiKey, { ...account, secret: secret + 'x' }]]), at, 300_000).ok
  }))
})

t.test('the test client cannot sign outside PAVE\'s four-digit years', async (t) => {
  t.throws(() => signedHeaders(ALICE, new Date(Date.UTC(10_000, 0, 1))), RangeError)
})

t.test('tokensEqual compares whole values', async (t) => {
  t.ok(tokensEqual('abc', 'abc'))
  t.notOk(tokensEqual('abc', 'abd'))
  t.notOk(tokensEqual('abc', 'ab'))
  t.notOk(tokensEqual('é', 'e'))
})

function upper (headers: Record<string, string>): Record<string, string> {
  return { ...headers, 'API-Token': headers['API-Token']!.toUpperCase() }
}
