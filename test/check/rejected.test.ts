import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ACCOUNT, FORBIDDEN_BODY, startUpstream, type Handler } from '../helpers/upstream.js'
import { CHECK_MESSAGE_LIMIT, extractMessage } from '../../src/check.js'
import { accountEnv, check } from '../fixtures/run-check.js'

const WRONG = { ...ACCOUNT, secret: 'wrong-secret-not-real-0123' }

t.test('credentials PAVE refuses: rejected with PAVE\'s message, exit 1', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv(WRONG), PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 1)
  t.match(result.lines[1], /^default \(\/\): rejected: Unable to validate the request, please recheck your API-Key and API-Token\., clock offset [+-]\d+\.\d s$/)
  t.match(result.lines[2], /^default \(\/\): no other API-Timestamp form was accepted either \(tried iso-millis, unix-seconds, rfc1123\): the credentials or the clock are the likelier cause$/)
  t.equal(result.lines[3], 'check failed: 0 of 1 account accepted')
  t.equal(upstream.received.filter((r) => r.headers['api-timestamp'] === upstream.received[0]?.headers['api-timestamp']).length, 1, 'the clock is right: no second attempt in the configured form')
  t.equal(upstream.received.length, 4, 'each other form once')
  t.notMatch(result.output, WRONG.secret)
  t.notMatch(result.output, upstream.received[0]?.headers['api-token'] as string)
})

t.test('one account accepted, one rejected: both reported, exit 1', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const yaml = `accounts:\n  - { name: good, prefix: /good, username: ${ACCOUNT.username}, apiKey: ${ACCOUNT.apiKey}, apiSecret: ${ACCOUNT.secret} }\n`
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-check-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'c.yaml'), yaml)
  const result = await check({ ...accountEnv(WRONG), PAVE_PROXY_CONFIG: join(dir, 'c.yaml'), PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 1)
  t.match(result.lines[1], /^good \(\/good\): accepted, /)
  t.match(result.lines[2], /^default \(\/\): rejected: Unable to validate/)
  t.match(result.lines[3], /^default \(\/\): no other API-Timestamp form was accepted either/)
  t.equal(result.lines[4], 'check failed: 1 of 2 accounts accepted')
})

function answering (status: number, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }): Handler {
  return (_req, res) => { res.writeHead(status, headers).end(body) }
}

t.test('a refusal\'s message is put on one line, shortened, with the token blanked', async (t) => {
  const upstream = await startUpstream({
    handler: (_req, res, received) => {
      const message = `bad token ${received.headers['api-token'] as string}\r\nsee\tdocs ${'x'.repeat(500)}`
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ message }))
    }
  })
  t.teardown(upstream.close)
  const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url })
  t.equal(result.code, 1)
  const line = result.lines[1] ?? ''
  t.match(line, /^default \(\/\): rejected: bad token \[redacted\] see docs x+…, clock offset /)
  t.notMatch(result.output, upstream.received[0]?.headers['api-token'] as string)
  t.equal(result.lines.length, 4, 'no line breaks from the body (the refused account\'s second line names the forms tried)')
})

t.test('answers other than accepted or refused', async (t) => {
  const cases: Array<[string, Handler, RegExp]> = [
    ['500 with a message', answering(500, '{"message":"Internal error"}'), /^default \(\/\): unexpected answer: HTTP 500: Internal error, clock offset [+-]\d+\.\d s$/],
    ['404 without a body', answering(404, ''), /^default \(\/\): unexpected answer: HTTP 404, clock offset /],
    ['403 without a body', answering(403, ''), /^default \(\/\): rejected: HTTP 403 without a message, /],
    ['401 in plain text', answering(401, 'Unauthorized\n', { 'content-type': 'text/plain' }), /^default \(\/\): rejected: Unauthorized, /],
    ['403 whose body breaks off', (_req, res) => {
      res.writeHead(403, { 'content-length': '1000' })
      res.write('{"message": "Unab')
      setTimeout(() => res.destroy(), 20)
    }, /^default \(\/\): rejected: HTTP 403 without a message, /],
    ['403 without a Date header', (_req, res) => {
      res.sendDate = false
      res.writeHead(403, { 'content-type': 'application/json' }).end(FORBIDDEN_BODY)
    }, /^default \(\/\): rejected: Unable to validate .*, clock offset unknown \(no usable Date header\)$/],
    ['200 with an unparsable Date header', answering(200, '[]', { date: 'yesterday-ish' }), /^default \(\/\): accepted, clock offset unknown \(no usable Date header\)$/],
    ['a large accepted answer', answering(200, Buffer.alloc(512 * 1024, 'a')), /^default \(\/\): accepted, /],
    ['a large refusal', answering(403, Buffer.alloc(512 * 1024, 'b'), { 'content-type': 'text/plain' }), /^default \(\/\): rejected: b{299}…, /]
  ]
  for (const [name, handler, pattern] of cases) {
    const upstream = await startUpstream({ handler })
    const result = await check({ ...accountEnv(), PAVE_UPSTREAM_URL: upstream.url })
    await upstream.close()
    t.match(result.lines[1], pattern, name)
    t.equal(result.code, pattern.source.includes('accepted,') ? 0 : 1, `${name}: exit code`)
  }
})

t.test('extractMessage', async (t) => {
  t.equal(extractMessage('{"message":"Missing required fields."}', []), 'Missing required fields.')
  t.equal(extractMessage('{"error":"no message field"}', []), '{"error":"no message field"}')
  t.equal(extractMessage('null', []), 'null')
  t.equal(extractMessage('{"message":"  "}', []), undefined)
  t.equal(extractMessage('token abc and secret xyz', ['abc', 'xyz']), 'token [redacted] and secret [redacted]')
  t.equal(extractMessage('é'.repeat(400), [])?.length, CHECK_MESSAGE_LIMIT)
})
