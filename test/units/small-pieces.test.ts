/**
 * The small pieces whose every branch the request-level tests do not reach:
 * error classification, the error serializer, the inbound guard's address forms,
 * the command-line parser in-process, the body recorder, the clock-skew window.
 */
import t from 'tap'
import { classifyUpstreamError, ProxyError } from '../../src/errors.js'
import { serializeError } from '../../src/observe/logging.js'
import { createInboundGuard } from '../../src/inbound/guard.js'
import { parseCommandLine, UsageError } from '../../src/config/cli.js'
import { BodyRecorder } from '../../src/upstream/body-recorder.js'
import { ClockSkew } from '../../src/signing/clock-skew.js'
import { DEFAULT_INBOUND_HEADERS_TIMEOUT_MS } from '../../src/config/schema.js'

const withCode = (code: string, cause?: unknown): Error => Object.assign(new Error('x', cause !== undefined ? { cause } : undefined), { code })

t.test('classifyUpstreamError maps every failure class', async (t) => {
  const cases: Array<[unknown, string]> = [
    [withCode('UND_ERR_CONNECT_TIMEOUT'), 'PAVE_PROXY_UPSTREAM_CONNECT_TIMEOUT'],
    [withCode('UND_ERR_HEADERS_TIMEOUT'), 'PAVE_PROXY_UPSTREAM_TIMEOUT'],
    [withCode('UND_ERR_BODY_TIMEOUT'), 'PAVE_PROXY_UPSTREAM_TIMEOUT'],
    [withCode('DEPTH_ZERO_SELF_SIGNED_CERT'), 'PAVE_PROXY_UPSTREAM_TLS'],
    [withCode('ERR_SSL_WRONG_VERSION_NUMBER'), 'PAVE_PROXY_UPSTREAM_TLS'],
    [withCode('ERR_TLS_CERT_ALTNAME_INVALID'), 'PAVE_PROXY_UPSTREAM_TLS'],
    [withCode('HPE_INVALID_HEADER_TOKEN'), 'PAVE_PROXY_UPSTREAM_BAD_RESPONSE'],
    [withCode('UND_ERR_INFO'), 'PAVE_PROXY_UPSTREAM_BAD_RESPONSE'],
    [withCode('UND_ERR_RES_CONTENT_LENGTH_MISMATCH'), 'PAVE_PROXY_UPSTREAM_BAD_RESPONSE'],
    [withCode('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'), 'PAVE_PROXY_REQUEST_BAD'],
    [withCode('ECONNREFUSED'), 'PAVE_PROXY_UPSTREAM_UNREACHABLE'],
    [withCode('SOMETHING_ELSE', withCode('ECONNRESET')), 'PAVE_PROXY_UPSTREAM_UNREACHABLE'],
    [new Error('wrapped', { cause: new ProxyError('PAVE_PROXY_REQUEST_TOO_LARGE') }), 'PAVE_PROXY_REQUEST_TOO_LARGE'],
    [new Error('no code at all'), 'PAVE_PROXY_UPSTREAM_UNREACHABLE'],
    ['not even an Error', 'PAVE_PROXY_UPSTREAM_UNREACHABLE']
  ]
  for (const [error, code] of cases) t.equal(classifyUpstreamError(error), code, String((error as { code?: string }).code ?? error))
})

t.test('serializeError keeps the type, message and code, never a stack', async (t) => {
  t.same(serializeError(withCode('ECONNRESET')), { type: 'Error', message: 'x', code: 'ECONNRESET' })
  t.same(serializeError(new TypeError('bad')), { type: 'TypeError', message: 'bad' })
  t.same(serializeError('a string'), { message: 'a string' })
})

t.test('the inbound guard: IPv4-mapped and IPv6 callers, unknown address, token only', async (t) => {
  const byAddress = createInboundGuard({ headersTimeoutMs: DEFAULT_INBOUND_HEADERS_TIMEOUT_MS, requestTimeoutMs: 0, keepAliveTimeoutMs: 1000, maxHeaderSize: 16384, allow: ['10.0.0.0/8', '::1/128'] })
  t.ok(byAddress !== undefined)
  t.equal(byAddress?.check('::ffff:10.1.2.3', {}), 'allowed', 'IPv4-mapped checked as IPv4')
  t.equal(byAddress?.check('::ffff:192.168.1.1', {}), 'address-refused')
  t.equal(byAddress?.check('::1', {}), 'allowed')
  t.equal(byAddress?.check('fe80::1', {}), 'address-refused')
  t.equal(byAddress?.check('10.9.9.9', {}), 'allowed')
  t.equal(byAddress?.check(undefined, {}), 'address-refused', 'a socket without an address is refused')
  t.equal(createInboundGuard({ headersTimeoutMs: 1, requestTimeoutMs: 0, keepAliveTimeoutMs: 1, maxHeaderSize: 16384 }), undefined, 'no guard when nothing is configured')
})

t.test('parseCommandLine, in-process', async (t) => {
  t.same(parseCommandLine([]), { command: 'serve', flags: {}, help: false, version: false, checkConfig: false })
  t.same(parseCommandLine(['check', '--port', '1', '--check-config']), { command: 'check', flags: { port: '1' }, help: false, version: false, checkConfig: true })
  t.throws(() => parseCommandLine(['--nope']), UsageError)
  t.throws(() => parseCommandLine(['--port']), UsageError)
  t.throws(() => parseCommandLine(['dance']), { name: 'UsageError', message: 'unknown command "dance"' })
  t.throws(() => parseCommandLine(['serve', 'x']), { name: 'UsageError', message: 'unexpected argument "x"' })
})

t.test('BodyRecorder keeps a whole body, and nothing for a short one', async (t) => {
  const whole = new BodyRecorder(6)
  whole.end(Buffer.from('abcdef'))
  for await (const _chunk of whole) { /* drain */ }
  t.equal(whole.complete()?.toString(), 'abcdef')
  const short = new BodyRecorder(10)
  short.end(Buffer.from('abc'))
  for await (const _chunk of short) { /* drain */ }
  t.equal(short.complete(), undefined)
})

t.test('ClockSkew keeps only the latest samples', async (t) => {
  const skew = new ClockSkew({ warnThresholdMs: 1_000 })
  for (let i = 0; i < 5; i++) skew.observe(new Date(60_000).toUTCString(), 0, 0, true)
  t.equal(skew.offsetMs, 60_500)
  for (let i = 0; i < 3; i++) skew.observe(new Date(0).toUTCString(), 0, 0, true)
  t.equal(skew.offsetMs, 500, 'the old samples left the window')
})

t.test('forwarder helpers: error classes Node raises on a bad upstream answer, Connection lists', async (t) => {
  const { classifyForwardError, connectionNamed } = await import('../../src/upstream/forward.js')
  for (const code of ['ERR_HTTP_INVALID_STATUS_CODE', 'ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN']) {
    t.equal(classifyForwardError(withCode(code)), 'PAVE_PROXY_UPSTREAM_BAD_RESPONSE', code)
  }
  t.equal(classifyForwardError(withCode('ECONNREFUSED')), 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  t.same([...(connectionNamed(['X-One', 'x-two, keep-alive']) ?? [])], ['x-one', 'x-two', 'keep-alive'], 'repeated Connection headers')
  t.equal(connectionNamed(' , ,'), undefined, 'a Connection header that names nothing')
  t.equal(connectionNamed('close'), undefined)
})

t.test('a Signer without an injected clock uses the wall clock', async (t) => {
  const { Signer } = await import('../../src/signing/signer.js')
  const signer = new Signer({ tokenLifetimeSeconds: 300, refreshMarginSeconds: 60 })
  const signed = signer.sign({ name: 'a', prefix: '/', username: 'u', apiKey: 'k', apiSecret: 's' })
  t.ok(Math.abs(Date.parse(signed['api-timestamp']) - Date.now()) < 2_000)
})
