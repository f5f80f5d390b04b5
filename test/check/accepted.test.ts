import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ACCOUNT, echoHandler, startUpstream, type Handler } from '../helpers/upstream.js'
import { accountEnv, check } from '../fixtures/run-check.js'

const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-check-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('one account accepted: GET /v1/callbacks, signed; exit 0; the measured offset', async (t) => {
  const pave = Date.parse('2024-05-01T12:00:00Z')
  const handler: Handler = (req, res, received) => {
    res.setHeader('date', new Date(pave).toUTCString())
    echoHandler(req, res, received)
  }
  const upstream = await startUpstream({ handler, now: () => pave })
  t.teardown(upstream.close)
  // Local clock 0.1 s ahead of PAVE's whole second: Date (+0.5 s for its lost fraction) minus local = +0.4 s.
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url }, { now: () => pave + 100 })
  t.equal(result.code, 0)
  t.same(result.lines, [
    `configuration is valid: 1 account → ${upstream.url}`,
    'default (/): accepted, clock offset +0.4 s',
    'check passed: 1 account accepted'
  ])
  t.equal(upstream.received.length, 1)
  const received = upstream.received[0]!
  t.equal(received.method, 'GET')
  t.equal(received.url, '/v1/callbacks')
  t.equal(received.signedBy, ACCOUNT.username)
  t.equal(received.headers['api-timestamp'], '2024-05-01T12:00:00Z')
  t.notMatch(result.output, ACCOUNT.secret)
  t.notMatch(result.output, received.headers['api-token'] as string)
})

t.test('several accounts from the YAML file, each checked with its own credentials', async (t) => {
  const other = { username: 'other-user', apiKey: 'other-key-not-real', secret: 'other-secret-not-real-0123' }
  const upstream = await startUpstream({ accounts: [ACCOUNT, other] })
  t.teardown(upstream.close)
  const file = join(dir, 'two.yaml')
  writeFileSync(file, [
    'accounts:',
    `  - { name: main, prefix: /, username: ${ACCOUNT.username}, apiKey: ${ACCOUNT.apiKey}, apiSecret: ${ACCOUNT.secret} }`,
    `  - { name: other, prefix: /other, username: ${other.username}, apiKey: ${other.apiKey}, apiSecret: ${other.secret} }`,
    ''
  ].join('\n'))
  const result = await check({ PAVE_PROXY_CONFIG: file, PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 0)
  t.equal(result.lines.length, 4)
  t.match(result.lines[1], /^main \(\/\): accepted, clock offset [+-]\d+\.\d s$/)
  t.match(result.lines[2], /^other \(\/other\): accepted, clock offset [+-]\d+\.\d s$/)
  t.equal(result.lines[3], 'check passed: 2 accounts accepted')
  t.same(upstream.received.map((r) => [r.url, r.signedBy]), [['/v1/callbacks', ACCOUNT.username], ['/v1/callbacks', other.username]])
})

t.test('an injected dispatcher is used and left open', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const { Agent } = await import('undici')
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.close())
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url }, { dispatcher })
  t.equal(result.code, 0)
  t.equal(dispatcher.closed, false)
})
