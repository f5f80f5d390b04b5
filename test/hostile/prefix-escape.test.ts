/**
 * Prefix escapes between accounts, as a property: for any path built from dot
 * segments (plain, percent-encoded, overlong UTF-8), encoded slashes and
 * backslashes, `;` parameters, doubled slashes, encoded prefix letters and
 * fragments, the proxy either refuses it (400, nothing upstream) or forwards it
 * so that the account that signs and the upstream path both follow from the
 * normalised path — under every common normaliser at once (WHATWG URL,
 * decode-then-resolve with merged slashes as nginx does, path parameters
 * stripped as Java servers do). A path of plain segments is always forwarded.
 */
import t from 'tap'
import fc from 'fast-check'
import { posix } from 'node:path'
import { SecretWatch, yamlConfig } from './lib/watch.js'
import { ACCOUNT, type TestAccount } from '../helpers/upstream.js'

const watch = new SecretWatch()
const RUNS = Number(process.env.PAVE_PROPERTY_RUNS ?? 600)

const TEST: TestAccount = { username: 'acct-test', apiKey: 'key-test-not-real', secret: 'secret-test-not-real-4321' }
const NESTED: TestAccount = { username: 'acct-nested', apiKey: 'key-nested-not-real', secret: 'secret-nested-not-real-8765' }
/** Longest prefix first. */
const PREFIXES: Array<[string, TestAccount]> = [['/a/b', NESTED], ['/test', TEST], ['/', ACCOUNT]]

const SEGMENTS = [
  // plain
  'test', 'TEST', 'Test', 'a', 'b', 'v1', 'sessions', 'UCB-C3NPR4AGQZ', 'photos', 'x_y~z', 'tes', 'testing', '.hidden', 'a.b', '...',
  // dot segments, plain and encoded, and overlong UTF-8 dots
  '.', '..', '%2e', '%2E', '%2e%2e', '.%2e', '%2e.', '%2E%2E', '%c0%ae', '%c0%ae%c0%ae', '%e0%80%ae', '%C0%2E', '%252e%252e',
  // separators in disguise
  '%2f', '%2F', '..%2f', '%5c', '%5C', '..%5c', '\\', '..\\', '%c0%af', '%e0%80%af', '%ef%bc%8f',
  // parameters, fragments, queries
  ';', 'a;b=c', '..;', '%3b', '#', '#x', '%23', 'x%3F',
  // encoded letters of a prefix, NUL, percent oddities, non-ASCII
  '%74est', '%54EST', 'te%73t', '%61', '%41', '%00', '%25', '%', '%zz', '%2', '%C3%A9', 'é', '@', 'http:', ''
]

/** Every %XX decoded, or undefined when that is not valid UTF-8. */
function decodeAll (path: string): string | undefined {
  try { return decodeURIComponent(path) } catch { return undefined }
}

function whatwg (path: string): string | undefined {
  try {
    const url = new URL(path, 'http://normaliser.invalid')
    return url.host === 'normaliser.invalid' ? decodeAll(url.pathname) : undefined
  } catch { return undefined }
}

/** Decode, then resolve dot segments and merge slashes (nginx's `merge_slashes on`). */
function decodeThenResolve (path: string): string | undefined {
  const decoded = decodeAll(path)
  if (decoded === undefined) return undefined
  const resolved = posix.normalize(decoded.replace(/\/+/g, '/'))
  return resolved === '.' ? '/' : resolved
}

/** Path parameters removed from each segment, then WHATWG. */
function withoutParameters (path: string): string | undefined {
  return whatwg(path.split('/').map((segment) => segment.split(';')[0]).join('/'))
}

/** The one normalised path, or undefined when normalisers disagree (an ambiguous path). */
function normalised (path: string): string | undefined {
  const forms = [whatwg(path), decodeThenResolve(path), withoutParameters(path), decodeAll(path)]
  return forms.every((form) => form !== undefined && form === forms[0]) ? forms[0] : undefined
}

function accountFor (path: string): [string, TestAccount] {
  return PREFIXES.find(([prefix]) => prefix === '/' || path === prefix || path.startsWith(prefix + '/')) as [string, TestAccount]
}

const isPlain = (segments: string[]): boolean => segments.every((s) => /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/.test(s) && s !== '...')

t.test(`property (${RUNS} runs): refused, or the account and the upstream path follow from the normalised path`, async (t) => {
  const upstream = await watch.upstream({ accounts: [ACCOUNT, TEST, NESTED] })
  const proxy = await watch.proxy({
    upstreamUrl: upstream.url,
    configFile: yamlConfig([
      'accounts:',
      `  - { name: test, prefix: /test, username: ${TEST.username}, apiKey: ${TEST.apiKey}, apiSecret: ${TEST.secret} }`,
      `  - { name: nested, prefix: /a/b, username: ${NESTED.username}, apiKey: ${NESTED.apiKey}, apiSecret: ${NESTED.secret} }`
    ])
  })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const outcome = { forwarded: 0, refused: 0, plain: 0 }

  const pathArbitrary = fc.record({
    segments: fc.array(fc.constantFrom(...SEGMENTS), { minLength: 0, maxLength: 6 }),
    query: fc.option(fc.constantFrom('?a=1', '?next=/test/../x', '?p=%2e%2e%2f&q=%zz', '?', '?a=%74est#frag'), { nil: '' })
  })

  await fc.assert(fc.asyncProperty(pathArbitrary, async ({ segments, query }) => {
    const path = '/' + segments.join('/')
    const before = upstream.received.length
    const answer = await watch.raw(proxy.port, Buffer.from(`GET ${path}${query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'utf8'), 5_000, true)
    const forwarded = upstream.received.slice(before)
    if (isPlain(segments)) outcome.plain++
    if (answer.status === 400) {
      outcome.refused++
      if (forwarded.length !== 0) throw new Error(`${path}: refused but forwarded`)
      if (!/PAVE_PROXY_REQUEST_BAD(_PATH)?/.test(answer.text)) throw new Error(`${path}: 400 without the proxy's code`)
      if (isPlain(segments)) throw new Error(`${path}: a plain path was refused`)
      return
    }
    if (answer.status !== 200 || forwarded.length !== 1) throw new Error(`${path}${query}: status ${answer.status}, ${forwarded.length} upstream requests`)
    outcome.forwarded++
    const normal = normalised(path)
    if (normal === undefined) throw new Error(`${path}: forwarded although normalisers disagree on it`)
    const [prefix, account] = accountFor(normal)
    const received = forwarded[0]!
    if (received.signedBy !== account.username) throw new Error(`${path}: signed by ${String(received.signedBy)}, the normalised path ${normal} belongs to ${account.username}`)
    const rest = prefix === '/' ? normal : normal.slice(prefix.length) || '/'
    const receivedPath = received.url.split('?')[0] as string
    if (normalised(receivedPath) !== rest) throw new Error(`${path}: upstream path ${receivedPath} normalises to ${String(normalised(receivedPath))}, expected ${rest}`)
    // Byte for byte: the caller's path without the prefix, then the query as sent.
    const expected = (prefix === '/' ? path : path.slice(prefix.length) || '/') + (query.startsWith('?') ? query : '')
    if (received.url !== expected.replace(/^\/?(?=\?)/, '/')) throw new Error(`${path}${query}: upstream received ${received.url}`)
  }), {
    numRuns: RUNS,
    examples: [
      [{ segments: ['test', '..', 'v1'], query: '' }], [{ segments: ['test', '%2e%2e', 'v1'], query: '' }],
      [{ segments: ['test%2f..', 'v1'], query: '' }], [{ segments: ['%74est', 'v1'], query: '' }], [{ segments: ['a', '%62', 'v1'], query: '' }],
      [{ segments: ['test', '', 'v1'], query: '' }], [{ segments: ['test;x', 'v1'], query: '' }], [{ segments: ['test', '%c0%ae%c0%ae', 'v1'], query: '' }],
      [{ segments: ['test#', '..', 'v1'], query: '' }], [{ segments: ['test', 'v1', 'sessions'], query: '?a=1' }]
    ]
  })
  t.pass(`${outcome.forwarded} forwarded, ${outcome.refused} refused, ${outcome.plain} plain`)
  t.ok(outcome.forwarded > RUNS / 10 && outcome.refused > RUNS / 10, 'both outcomes exercised')
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
