/**
 * Path tricks against the rules, as a property: for any path built from dot segments
 * (plain, encoded, overlong), encoded slashes, `//`, `;` parameters, case changes and
 * encoded letters, a caller allowed only `GET /v1/sessions/*` and `GET /v1/sessions/*\/photos`
 * on account `test` either is refused (400 before the rules, or 403 by them) with nothing
 * upstream, or is forwarded — and then the path PAVE received, however a server
 * normalises it, is one its rules allow, on its account.
 */
import t from 'tap'
import fc from 'fast-check'
import { posix } from 'node:path'
import { request } from 'undici'
import { rawRequest } from '../helpers/raw-http.js'
import { compileRules, patternSource } from '../../src/inbound/rules.js'
import { INTAKE_TOKEN, TEST_ACCOUNT, startGateway } from './lib/gateway.js'

const RUNS = Number(process.env.PAVE_PROPERTY_RUNS ?? 600)

const SEGMENTS = [
  'v1', 'V1', 'sessions', 'Sessions', 'SESSIONS', 'callbacks', 'UCB-1', 'photos', 'results', 'test', 'TEST', 'SESSION:COMPLETE',
  '.', '..', '%2e', '%2E', '%2e%2e', '.%2e', '%c0%ae', '%c0%ae%c0%ae', '%252e%252e', '...',
  '%2f', '%2F', 'sessions%2f..', '%5c', '\\', 'x;y', ';', '..;', '%3b', '#', '%23', '%00', '%76%31', 's%65ssions', '%',
  'callbacks%2fSESSION:COMPLETE', ''
]

function decodeAll (path: string): string | undefined {
  try { return decodeURIComponent(path) } catch { return undefined }
}

/** Every reading of a path a server might take: as is, decoded, decoded and resolved with merged slashes, parameters stripped, lowercased. */
function readings (path: string): string[] {
  const decoded = decodeAll(path) ?? path
  const resolved = posix.normalize(decoded.replace(/\/+/g, '/'))
  const stripped = path.split('/').map((segment) => segment.split(';')[0]).join('/')
  return [path, decoded, resolved, stripped, resolved.toLowerCase()]
}

const allowed = compileRules([{ methods: ['GET'], paths: ['/v1/sessions/*', '/v1/sessions/*/photos'] }])

t.test(`property (${RUNS} runs): no encoding of a path gets a caller past its rules`, async (t) => {
  const gw = await startGateway(t, {
    files: { 'intake.tokens': `${INTAKE_TOKEN}\n` },
    yaml: ['callers:', '  - { name: intake, tokenFile: $DIR/intake.tokens, accounts: [test], allow: [{ methods: [GET], paths: ["/v1/sessions/*", "/v1/sessions/*/photos"] }] }']
  })
  const outcome = { forwarded: 0, refused: 0, forbidden: 0 }
  const segment = fc.oneof({ weight: 2, arbitrary: fc.constantFrom('UCB-1', 'ABC-123', 'photos', 'SESSION:COMPLETE') }, { weight: 3, arbitrary: fc.constantFrom(...SEGMENTS) })
  const arbitrary = fc.record({
    prefix: fc.oneof({ weight: 4, arbitrary: fc.constant('/test') }, { weight: 1, arbitrary: fc.constantFrom('/TEST', '/%74est', '', '/test/..', '/x/../test') }),
    segments: fc.oneof(
      fc.array(segment, { minLength: 0, maxLength: 5 }),
      // Near the rules: /v1/sessions/<any>[/<any>], where most tricks would have to hide.
      segment.map((a) => ['v1', 'sessions', a]),
      fc.tuple(segment, segment).map(([a, b]) => ['v1', 'sessions', a, 'photos', b]),
      segment.map((a) => ['v1', 'sessions', a, 'photos'])
    ),
    method: fc.oneof({ weight: 4, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('get', 'DELETE', 'PUT', 'HEAD') })
  })
  await fc.assert(fc.asyncProperty(arbitrary, async ({ prefix, segments, method }) => {
    const target = `${prefix}/${segments.join('/')}`
    const before = gw.upstream.received.length
    const answer = await rawRequest(gw.proxy.port, Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${INTAKE_TOKEN}\r\nConnection: close\r\n\r\n`, 'utf8'), 5_000)
    const forwarded = gw.upstream.received.slice(before)
    if (answer.status !== 200) {
      if (forwarded.length !== 0) throw new Error(`${method} ${target}: answered ${answer.status} but forwarded`)
      if (answer.status === 403) outcome.forbidden++
      else outcome.refused++
      return
    }
    outcome.forwarded++
    const received = forwarded[0]
    if (forwarded.length !== 1 || received === undefined) throw new Error(`${target}: ${forwarded.length} upstream requests`)
    if (received.method !== 'GET') throw new Error(`${method} ${target}: forwarded as ${received.method}`)
    if (received.signedBy !== TEST_ACCOUNT.username) throw new Error(`${target}: signed by ${String(received.signedBy)}`)
    for (const reading of readings(received.url)) {
      if (!allowed('GET', reading)) throw new Error(`${method} ${target}: PAVE received ${received.url}, which reads as ${reading}: outside the rules`)
    }
  }), {
    numRuns: RUNS,
    examples: [
      [{ prefix: '/test', segments: ['v1', 'sessions', 'UCB-1'], method: 'GET' }],
      [{ prefix: '/test', segments: ['v1', 'sessions', '..', 'callbacks', 'SESSION:COMPLETE'], method: 'GET' }],
      [{ prefix: '/test', segments: ['v1', 'sessions', '%2e%2e', 'callbacks'], method: 'GET' }],
      [{ prefix: '/test', segments: ['v1', 'sessions', 'callbacks%2fSESSION:COMPLETE'], method: 'GET' }],
      [{ prefix: '/test', segments: ['v1', 'sessions', 'x;y'], method: 'GET' }],
      [{ prefix: '/test', segments: ['v1', 'sessions', '', 'photos'], method: 'GET' }],
      [{ prefix: '/test', segments: ['V1', 'sessions', 'UCB-1'], method: 'GET' }],
      [{ prefix: '', segments: ['v1', 'sessions', 'UCB-1'], method: 'GET' }],
      [{ prefix: '/test', segments: ['v1', 'sessions', 'UCB-1'], method: 'DELETE' }]
    ]
  })
  t.pass(`${outcome.forwarded} forwarded, ${outcome.forbidden} forbidden, ${outcome.refused} refused`)
  t.ok(outcome.forwarded > RUNS / 10 && outcome.forbidden > RUNS / 10 && outcome.refused > RUNS / 10, 'every outcome exercised')
  const ok = await request(`${gw.proxy.url}/test/v1/sessions/UCB-1/photos?x=/../callbacks`, { headers: { authorization: `Bearer ${INTAKE_TOKEN}` } })
  t.equal(ok.statusCode, 200, 'the query is not part of the path')
  await ok.body.dump()
})

t.test('patterns compile to one expression per method', async (t) => {
  t.equal(patternSource('/'), '/')
  t.equal(patternSource('/v1/sessions/*/photos'), '/v1/sessions/[^/]+/photos')
  t.equal(patternSource('/v1/callbacks/**'), '/v1/callbacks(?:/.*)?')
  t.equal(patternSource('/v1/a.b+c'), '/v1/a\\.b\\+c')
  const rules = compileRules([{ methods: ['*'], paths: ['/v1/callbacks/**'] }, { methods: ['GET'], paths: ['/'] }])
  t.ok(rules('DELETE', '/v1/callbacks'))
  t.ok(rules('OPTIONS', '/v1/callbacks/SESSION:COMPLETE/x'))
  t.ok(rules('GET', '/'))
  t.notOk(rules('POST', '/'))
  t.notOk(rules('GET', '/v1/callbacksX'))
  t.notOk(rules('TRACE', '/v1/callbacks'))
  t.notOk(compileRules([])('GET', '/'), 'no rule, nothing')
})
