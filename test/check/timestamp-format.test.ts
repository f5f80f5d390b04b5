/**
 * `pave-proxy check` against a PAVE that refuses the configured `API-Timestamp`
 * form: each other form is tried once per account, the accepted one is named with
 * the setting that selects it, and the exit code stays 1 (the configuration in
 * force is refused).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startPaveMock } from '../../src/mock/server.js'
import { timestampFormatOf } from '../../src/signing/pave-token.js'
import { accountEnv, check } from '../fixtures/run-check.js'
import { startUpstream } from '../helpers/upstream.js'
import { ALICE, BOB } from '../mock/client.js'

const asTest = (a: typeof ALICE): { username: string, apiKey: string, secret: string } => ({ username: a.username, apiKey: a.apiKey, secret: a.secret })

t.test('PAVE accepts unix-seconds only: the check names it and the setting, exit 1', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE], timestampFormats: ['unix-seconds'] })
  t.teardown(mock.close)
  const result = await check({ ...accountEnv(asTest(ALICE)), PAVE_UPSTREAM_URL: mock.url })
  t.equal(result.code, 1)
  t.match(result.lines[1], /^default \(\/\): rejected: Unable to validate the request/)
  t.equal(result.lines[2], 'default (/): PAVE accepts API-Timestamp as unix-seconds (1676116800), not iso-seconds: set signing.timestampFormat: unix-seconds (PAVE_TIMESTAMP_FORMAT=unix-seconds)')
  t.equal(result.lines[3], 'check failed: 0 of 1 account accepted')
  t.same(mock.requests.map((r) => [timestampFormatOf(String(r.headers['api-timestamp'])), r.rejected]),
    [['iso-seconds', 'malformed-timestamp'], ['iso-millis', 'malformed-timestamp'], ['unix-seconds', undefined]],
    'each other form at most once, stopping at the accepted one')
  t.notMatch(result.output, ALICE.secret)

  mock.reset()
  const fixed = await check({ ...accountEnv(asTest(ALICE)), PAVE_UPSTREAM_URL: mock.url, PAVE_TIMESTAMP_FORMAT: 'unix-seconds' })
  t.equal(fixed.code, 0, 'with the setting named, the check passes')
  t.match(fixed.lines[1], /^default \(\/\): accepted, clock offset /)
  t.equal(mock.requests.length, 1)
})

t.test('several accounts: each is probed once per form; rfc1123 configured, iso-seconds accepted', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE, BOB] })
  t.teardown(mock.close)
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-check-forms-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'c.yaml'), `signing:\n  timestampFormat: rfc1123\naccounts:\n  - { name: bob, prefix: /bob, username: ${BOB.username}, apiKey: ${BOB.apiKey}, apiSecret: ${BOB.secret} }\n`)
  const result = await check({ ...accountEnv(asTest(ALICE)), PAVE_UPSTREAM_URL: mock.url, PAVE_PROXY_CONFIG: join(dir, 'c.yaml') })
  t.equal(result.code, 1)
  t.same(result.lines.slice(1), [
    result.lines[1],
    'bob (/bob): PAVE accepts API-Timestamp as iso-seconds (2023-02-11T12:00:00Z), not rfc1123: set signing.timestampFormat: iso-seconds (PAVE_TIMESTAMP_FORMAT=iso-seconds)',
    result.lines[3],
    'default (/): PAVE accepts API-Timestamp as iso-seconds (2023-02-11T12:00:00Z), not rfc1123: set signing.timestampFormat: iso-seconds (PAVE_TIMESTAMP_FORMAT=iso-seconds)',
    'check failed: 0 of 2 accounts accepted'
  ])
  t.match(result.lines[1], /^bob \(\/bob\): rejected: /)
  t.match(result.lines[3], /^default \(\/\): rejected: /)
  t.equal(mock.requests.length, 4, 'one refused and one accepted call per account')
})

t.test('a try that finds PAVE unreachable counts as not accepted; the next form is still tried', async (t) => {
  let calls = 0
  const upstream = await startUpstream({
    timestampFormats: ['rfc1123'],
    handler: (req, res, received) => {
      if (++calls === 2) {
        req.socket.destroy() // the iso-millis try
        return
      }
      res.writeHead(received.signedBy !== undefined ? 200 : 403, { 'content-type': 'application/json' }).end('{"message":"no"}')
    }
  })
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url, PAVE_UPSTREAM_RETRIES: '0' })
  t.equal(result.code, 1)
  t.match(result.lines[2], /^default \(\/\): PAVE accepts API-Timestamp as rfc1123 \(Sat, 11 Feb 2023 12:00:00 GMT\), not iso-seconds/)
  t.equal(upstream.received.length, 4)
})
