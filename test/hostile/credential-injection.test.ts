/**
 * Credential injection: whatever a caller sends under PAVE's credential names —
 * in any case, repeated, with `_` for `-`, in chunked trailers, or named in
 * `Connection`, `Proxy-Connection`, `Keep-Alive` or `TE` to make the proxy drop
 * its own — the upstream receives exactly one `API-Key`, one `API-Timestamp` and
 * one `API-Token`, the proxy's, and they verify; and on a v2 path exactly one
 * `API-Access-Token`, the account's API key (never the caller's).
 */
import t from 'tap'
import fc from 'fast-check'
import { SecretWatch } from './lib/watch.js'
import { ACCOUNT, verifySignature } from '../helpers/upstream.js'

const watch = new SecretWatch()
const RUNS = Number(process.env.PAVE_PROPERTY_RUNS ?? 300)
const NAMES = ['api-key', 'api-timestamp', 'api-token']
/** What callers may try to inject: the v1 names and v2's. */
const INJECTED_NAMES = [...NAMES, 'api-access-token']
const CALLER_VALUES = ['caller-key-0000', '2000-01-01T00:00:00Z', 'c'.repeat(64), 'evil', '']

/** A random casing of a header name, with `-` sometimes written `_`. */
const spelling = (name: string): fc.Arbitrary<string> => fc.tuple(
  fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }),
  fc.boolean()
).map(([upper, underscore]) => [...name].map((c, i) => (c === '-' && underscore ? '_' : upper[i] === true ? c.toUpperCase() : c)).join(''))

const injected = fc.array(
  fc.tuple(fc.constantFrom(...INJECTED_NAMES).chain(spelling), fc.constantFrom(...CALLER_VALUES)),
  { minLength: 0, maxLength: 8 })
const hopByHop = fc.record({
  connection: fc.subarray([...INJECTED_NAMES, 'keep-alive', 'close', 'host', 'x-request-id', 'content-length']),
  proxyConnection: fc.subarray(NAMES),
  keepAlive: fc.subarray(NAMES),
  te: fc.subarray([...NAMES, 'trailers'])
})

/** Names of the API-* fields the upstream received, lowercased, underscores kept. */
function credentialFields (rawHeaders: string[]): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()).filter((n) => /^api[-_]/.test(n))
}

t.test(`property (${RUNS} runs): exactly the proxy's three credentials reach the upstream`, async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  await fc.assert(fc.asyncProperty(injected, hopByHop, fc.boolean(), fc.boolean(), async (fields, hop, withBody, v2) => {
    const target = v2 ? '/v2/capture/sessions/UCB-C3NPR4AGQZ/resend' : withBody ? '/v1/sessions' : '/v1/callbacks'
    const lines = [`${withBody ? 'POST' : 'GET'} ${target} HTTP/1.1`, 'Host: x']
    for (const [name, value] of fields) lines.push(`${name}: ${value}`)
    if (hop.connection.length > 0) lines.push(`Connection: ${hop.connection.join(', ')}`)
    if (hop.proxyConnection.length > 0) lines.push(`Proxy-Connection: ${hop.proxyConnection.join(', ')}`)
    if (hop.keepAlive.length > 0) lines.push(`Keep-Alive: ${hop.keepAlive.join(', ')}`)
    if (hop.te.length > 0) lines.push(`TE: ${hop.te.join(', ')}`)
    if (withBody) lines.push('Content-Type: application/json', 'Content-Length: 2')
    const before = upstream.received.length
    const answer = await watch.raw(proxy.port, lines.join('\r\n') + '\r\n\r\n' + (withBody ? '{}' : ''), 5_000, hop.connection.includes('close'))
    if (answer.status !== 200) throw new Error(`status ${answer.status} for ${JSON.stringify(lines)}`)
    const received = upstream.received[before]
    if (received === undefined || upstream.received.length !== before + 1) throw new Error('not exactly one request upstream')
    const fieldsUpstream = credentialFields(received.rawHeaders)
    const expected = v2 ? [...NAMES, 'api-access-token'] : NAMES
    if (fieldsUpstream.sort().join() !== [...expected].sort().join()) throw new Error(`upstream got ${fieldsUpstream.join()} for ${JSON.stringify(lines)}`)
    if (v2 && received.headers['api-access-token'] !== ACCOUNT.apiKey) throw new Error('v2: API-Access-Token is not the account\'s key')
    if (received.signedBy !== ACCOUNT.username) throw new Error('the signature does not verify')
    if (received.headers['api-key'] !== ACCOUNT.apiKey) throw new Error('not the account\'s key')
    for (const header of ['proxy-connection', 'keep-alive', 'te']) if (header in received.headers) throw new Error(`${header} forwarded`)
  }), { numRuns: RUNS })
  t.pass(`${upstream.received.length} requests, each with the proxy's credentials only`)
})

t.test('credentials in chunked trailers never reach the upstream', async (t) => {
  const trailers: Array<Record<string, string | undefined>> = []
  const upstream = await watch.upstream({
    bufferBody: false,
    handler: (req, res, received) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        trailers.push({ ...req.trailers })
        received.body = Buffer.concat(chunks)
        res.writeHead(received.signedBy === ACCOUNT.username ? 200 : 403).end('{}')
      })
    }
  })
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const declared of ['Trailer: API-Key, API-Token, API-Timestamp\r\n', '']) {
    const answer = await watch.raw(proxy.port, `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${declared}\r\n` +
      '2\r\n{}\r\n0\r\nAPI-Key: caller-key\r\nAPI-Token: caller-token\r\napi-timestamp: 2000-01-01T00:00:00Z\r\nApi_Token: caller-token-2\r\n\r\n')
    t.equal(answer.status, 200, 'signed by the proxy, not the trailers')
  }
  t.equal(upstream.received.length, 2)
  t.same(trailers, [{}, {}], 'no trailers upstream')
  for (const received of upstream.received) {
    t.equal(received.body.toString(), '{}')
    t.notOk('trailer' in received.headers, 'no Trailer declaration upstream')
    t.equal(verifySignature(received.headers, [ACCOUNT], Date.now()), ACCOUNT.username)
  }
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
