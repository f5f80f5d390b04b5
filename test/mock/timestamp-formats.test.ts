/** pave-mock accepts the `API-Timestamp` forms it is told to (default: iso-seconds, the written contract). */
import t from 'tap'
import { collect, waitForOutput } from '../helpers/spawn.js'
import { MOCK_MAIN, spawnTs } from './spawn.js'
import { startPaveMock, validateTimestampFormats } from '../../src/mock/server.js'
import { TIMESTAMP_FORMATS, computeToken, formatTimestamp, type PaveCredentials, type TimestampFormat } from '../../src/signing/pave-token.js'
import { ALICE, FORBIDDEN, call } from './client.js'

function headersIn (format: TimestampFormat, account: PaveCredentials = ALICE, at = new Date()): Record<string, string> {
  const timestamp = formatTimestamp(at, format)
  return { 'API-Key': account.apiKey, 'API-Timestamp': timestamp, 'API-Token': computeToken(account, timestamp) }
}

t.test('by default only iso-seconds is accepted; the others are malformed', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE] })
  t.teardown(mock.close)
  t.same(mock.timestampFormats, ['iso-seconds'])
  for (const format of TIMESTAMP_FORMATS) {
    const answer = await call(mock, 'GET', '/v1/callbacks', { headers: headersIn(format) })
    t.equal(answer.status, format === 'iso-seconds' ? 200 : 403, format)
    if (format !== 'iso-seconds') t.same(answer.json, FORBIDDEN)
  }
  t.same(mock.requests.map((r) => r.rejected), [undefined, 'malformed-timestamp', 'malformed-timestamp', 'malformed-timestamp'])
})

t.test('told which forms to accept, it accepts those only, within the lifetime', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE], timestampFormats: ['unix-seconds', 'rfc1123'], tokenLifetimeSeconds: 60 })
  t.teardown(mock.close)
  const statuses = []
  for (const format of TIMESTAMP_FORMATS) statuses.push((await call(mock, 'GET', '/v1/callbacks', { headers: headersIn(format) })).status)
  t.same(statuses, [403, 403, 200, 200])
  const stale = await call(mock, 'GET', '/v1/callbacks', { headers: headersIn('unix-seconds', ALICE, new Date(Date.now() - 120_000)) })
  t.equal(stale.status, 403)
  t.equal(mock.requests.at(-1)?.rejected, 'stale-timestamp')
  const wrong = headersIn('rfc1123')
  wrong['API-Token'] = computeToken(ALICE, formatTimestamp(new Date(), 'iso-seconds'))
  t.equal((await call(mock, 'GET', '/v1/callbacks', { headers: wrong })).status, 403, 'the token must cover the string sent')
})

t.test('an empty or unknown list of forms is refused', async (t) => {
  t.throws(() => validateTimestampFormats([]), /name at least one of iso-seconds, iso-millis, unix-seconds, rfc1123/)
  t.throws(() => validateTimestampFormats(['iso-seconds', 'toJSON']), /unknown form "toJSON"/)
  await t.rejects(startPaveMock({ timestampFormats: ['epoch' as TimestampFormat] }), RangeError)
})

t.test('the bin: --timestamp-formats and PAVE_MOCK_TIMESTAMP_FORMATS', async (t) => {
  const child = spawnTs(MOCK_MAIN, ['--port', '0', '--timestamp-formats', 'unix-seconds, iso-millis', '--log-level', 'silent'])
  const { done, stdout } = collect(child)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = (await waitForOutput(stdout, /pave-mock listening on (http:\/\/\S+)/))[1]!
  await waitForOutput(stdout, /accepting API-Timestamp as unix-seconds, iso-millis/)
  const demo = { username: 'demo-user', apiKey: 'demo-key-not-real', secret: 'demo-secret-not-real' }
  t.equal((await fetch(`${url}/v1/callbacks`, { headers: headersIn('unix-seconds', demo) })).status, 200)
  t.equal((await fetch(`${url}/v1/callbacks`, { headers: headersIn('iso-seconds', demo) })).status, 403)
  child.kill('SIGTERM')
  t.equal((await done).code, 0)

  const all = spawnTs(MOCK_MAIN, ['--port', '0', '--log-level', 'silent'], { PAVE_MOCK_TIMESTAMP_FORMATS: 'all' })
  const allOut = collect(all)
  t.teardown(() => { if (all.exitCode === null) all.kill('SIGKILL') })
  await waitForOutput(allOut.stdout, /accepting API-Timestamp as iso-seconds, iso-millis, unix-seconds, rfc1123/)
  all.kill('SIGTERM')
  t.equal((await allOut.done).code, 0)

  const bad = await collect(spawnTs(MOCK_MAIN, ['--timestamp-formats', 'epoch'])).done
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--timestamp-formats: unknown form "epoch"/)
  const help = await collect(spawnTs(MOCK_MAIN, ['--help'])).done
  t.match(help.stdout, /--timestamp-formats <list>/)
})
