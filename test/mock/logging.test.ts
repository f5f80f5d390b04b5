/** pave-mock logs with pino, says why it refused a request, and never logs a secret or a token. */
import t from 'tap'
import { logCapture as capture } from '../helpers/proxy.js'
import { pino } from 'pino'
import { baseUrl, startPaveMock } from '../../src/mock/server.js'
import { ALICE, call, signedHeaders } from './client.js'

t.test('a pino logger of the caller\'s: refusals and faults are logged, secrets and tokens never', async (t) => {
  const { stream, lines } = capture()
  const mock = await startPaveMock({ accounts: [ALICE], logger: pino({ level: 'trace' }, stream), faults: [{ path: /^\/v1\/sessions\//, status: 500, times: 1 }] })
  t.teardown(mock.close)
  const good = signedHeaders(ALICE)
  const bad = signedHeaders({ ...ALICE, secret: 'wrong-secret-not-real' })
  await call(mock, 'POST', '/v1/sessions', { headers: good, body: { vehicle: { vin: 'X' } } })
  await call(mock, 'GET', '/v1/callbacks', { headers: bad })
  await call(mock, 'GET', '/v1/sessions/ABC-1Q2W3E4R5T', { headers: good })
  const text = lines.join('\n')
  t.match(text, /signature check failed/)
  t.match(text, /"reason":"wrong-token"/)
  t.match(text, /"username":"alice-user"/)
  t.match(text, /injecting a fault/)
  t.match(text, /"path":"\/\^\\\\\/v1\\\\\/sessions\\\\\/\/"/, 'a RegExp path is logged as its source')
  for (const secret of [ALICE.secret, good['API-Token']!, bad['API-Token']!, 'wrong-secret-not-real']) {
    t.notOk(text.includes(secret), 'no secret or token in the logs')
  }
})

t.test('pino options: the mock makes its own logger, redacting credential headers', async (t) => {
  const mock = await startPaveMock({ logger: { level: 'silent' } })
  t.teardown(mock.close)
  t.equal(mock.app.log.level, 'silent')
  t.equal((await call(mock, 'GET', '/v1/callbacks')).status, 200)
})

t.test('baseUrl brackets IPv6 addresses', async (t) => {
  t.equal(baseUrl('127.0.0.1', 8080), 'http://127.0.0.1:8080')
  t.equal(baseUrl('::1', 8080), 'http://[::1]:8080')
})
