import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { timestampFormatOf } from '../../src/signing/pave-token.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { describeOffset, measureOffset } from '../../src/check.js'
import { accountEnv, check } from '../fixtures/run-check.js'

const BEHIND_MS = 600_000 // ten minutes: beyond the 5-minute token lifetime
const behind = (): number => Date.now() - BEHIND_MS

/** Requests signed in the configured form (iso-seconds); the others are the check's tries of other forms. */
function inConfiguredForm (received: ReadonlyArray<{ headers: Record<string, unknown> }>): number {
  return received.filter((r) => timestampFormatOf(String(r.headers['api-timestamp'])) === 'iso-seconds').length
}

t.test('a clock far behind: refused, re-signed once with PAVE\'s clock, accepted, with a warning', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url }, { now: behind })
  t.equal(result.code, 0)
  const match = /^default \(\/\): accepted after re-signing with PAVE's clock, clock offset \+(\d+\.\d) s \(beyond the 30 s warning threshold: check this host's time sync\)$/.exec(result.lines[1] ?? '')
  t.ok(match, result.lines[1] ?? '(no line)')
  t.ok(Math.abs(Number(match?.[1]) - BEHIND_MS / 1000) <= 1.5, `offset ${match?.[1]} s`)
  t.same(upstream.received.map((r) => r.signedBy), [undefined, ACCOUNT.username], 'refused, then accepted')
})

t.test('the learned offset signs the next accounts at once, as in the proxy', async (t) => {
  const other = { username: 'other-user', apiKey: 'other-key-not-real', secret: 'other-secret-not-real-0123' }
  const upstream = await startUpstream({ accounts: [ACCOUNT, other] })
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-check-'))
  t.teardown(async () => { rmSync(dir, { recursive: true, force: true }); await upstream.close() })
  writeFileSync(join(dir, 'c.yaml'), `accounts:\n  - { name: other, prefix: /other, username: ${other.username}, apiKey: ${other.apiKey}, apiSecret: ${other.secret} }\n`)
  const result = await check({ ...accountEnv(), PAVE_PROXY_CONFIG: join(dir, 'c.yaml'), PAVE_UPSTREAM_URL: upstream.url, PAVE_CLOCK_SKEW_WARN_SECONDS: '3600' }, { now: behind })
  t.equal(result.code, 0)
  t.match(result.lines[1], /^other \(\/other\): accepted after re-signing with PAVE's clock, clock offset \+\d+\.\d s$/)
  t.match(result.lines[2], /^default \(\/\): accepted, clock offset \+\d+\.\d s$/)
  t.same(upstream.received.map((r) => r.signedBy), [undefined, other.username, ACCOUNT.username])
})

t.test('with clock-skew correction off: rejected, and the offset says why', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url, PAVE_CLOCK_SKEW_CORRECTION: 'false' }, { now: behind })
  t.equal(result.code, 1)
  t.match(result.lines[1], /^default \(\/\): rejected: Unable to validate the request, please recheck your API-Key and API-Token\., clock offset \+\d+\.\d s \(beyond the 30 s warning threshold/)
  t.equal(inConfiguredForm(upstream.received), 1, 'no second attempt')
  t.equal(upstream.received.length, 4, 'then each other timestamp form once')
  t.match(result.lines[2], /^default \(\/\): no other API-Timestamp form was accepted either \(tried iso-millis, unix-seconds, rfc1123\)/)
})

t.test('wrong credentials are not retried when the clock is right', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv({ ...ACCOUNT, secret: 'wrong-secret-not-real-0123' }), PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 1)
  t.equal(inConfiguredForm(upstream.received), 1)
})

t.test('a refusal after re-signing stays a refusal', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv({ ...ACCOUNT, secret: 'wrong-secret-not-real-0123' }), PAVE_UPSTREAM_URL: upstream.url }, { now: behind })
  t.equal(result.code, 1)
  t.match(result.lines[1], /^default \(\/\): rejected: Unable to validate/)
  t.equal(inConfiguredForm(upstream.received), 2)
})

t.test('an absurd Date (beyond a day away) is reported but not signed with', async (t) => {
  const upstream = await startUpstream({
    handler: (_req, res) => { res.writeHead(403, { date: new Date(Date.now() + 3 * 86_400_000).toUTCString() }).end('{"message":"nope"}') }
  })
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url })
  t.match(result.lines[1], /^default \(\/\): rejected: nope, clock offset \+259(19\d|20\d)\.\d s \(beyond/)
  t.equal(inConfiguredForm(upstream.received), 1)
})

t.test('measureOffset and describeOffset', async (t) => {
  const date = 'Wed, 01 May 2024 12:00:00 GMT'
  const at = Date.parse(date)
  t.equal(measureOffset(date, at, at), 500, 'the middle of the Date second')
  t.equal(measureOffset(date, at + 1000, at + 3000), -1500, 'against the middle of the exchange')
  t.equal(measureOffset(undefined, at, at), undefined)
  t.equal(measureOffset('garbage', at, at), undefined)
  t.equal(describeOffset(0, 30_000), 'clock offset +0.0 s')
  t.equal(describeOffset(-1250, 30_000), 'clock offset -1.3 s')
  t.equal(describeOffset(30_000, 30_000), 'clock offset +30.0 s')
  t.equal(describeOffset(-30_001, 30_000), 'clock offset -30.0 s (beyond the 30 s warning threshold: check this host\'s time sync)')
  t.equal(describeOffset(undefined, 30_000), 'clock offset unknown (no usable Date header)')
})
