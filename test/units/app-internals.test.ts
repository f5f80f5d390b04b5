/** Branches of buildApp that no healthy request reaches: the error handler's classes and the clock-offset log lines. */
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { ProxyError } from '../../src/errors.js'
import { logCapture, testConfig } from '../helpers/proxy.js'

t.test('errors thrown inside the proxy become its JSON errors', async (t) => {
  const { stream, lines } = logCapture()
  const app = await buildApp(testConfig({ upstreamUrl: 'http://127.0.0.1:9' }), { logStream: stream })
  t.teardown(() => app.close())
  app.get('/__proxy-error', async () => { throw new ProxyError('PAVE_PROXY_OVERLOADED') })
  app.get('/__client-error', async () => { throw Object.assign(new Error('bad input'), { statusCode: 422 }) })
  app.get('/__bug', async () => { throw new Error('internal detail that must not reach the caller') })
  const proxyError = await app.inject({ url: '/__proxy-error' })
  t.equal(proxyError.statusCode, 503)
  t.equal(proxyError.headers['x-pave-proxy-error'], 'PAVE_PROXY_OVERLOADED')
  const clientError = await app.inject({ url: '/__client-error' })
  t.equal(clientError.statusCode, 400)
  t.equal(clientError.json().code, 'PAVE_PROXY_REQUEST_BAD')
  const bug = await app.inject({ url: '/__bug' })
  t.equal(bug.statusCode, 500)
  t.same(bug.json(), { code: 'PAVE_PROXY_INTERNAL', message: 'The proxy failed to handle the request.' })
  t.notMatch(bug.body, 'internal detail')
  t.ok(lines.some((l) => l.includes('request failed inside the proxy') && l.includes('internal detail')), 'the detail is logged, without a stack')
  t.notOk(lines.some((l) => l.includes('"stack"')))
})

t.test('the clock offset crossing the warning threshold, both ways, is logged', async (t) => {
  const { stream, lines } = logCapture()
  const app = await buildApp(testConfig({ upstreamUrl: 'http://127.0.0.1:9', env: { PAVE_CLOCK_SKEW_WARN_SECONDS: '5' } }), { logStream: stream })
  t.teardown(() => app.close())
  const skew = app.clockSkew
  if (skew === undefined) throw new Error('clock-skew correction is on by default')
  skew.observe(new Date(60_000).toUTCString(), 0, 0, true)
  for (let i = 0; i < 3; i++) skew.observe(new Date(0).toUTCString(), 0, 0, true)
  t.ok(lines.some((l) => l.includes('"level":40') && l.includes('the upstream clock is far from the local clock')))
  t.ok(lines.some((l) => l.includes('"level":30') && l.includes('the clock offset is back within the warning threshold')))
  const metrics = await app.inject({ url: '/metrics' })
  t.match(metrics.body, /pave_proxy_clock_offset_seconds 0\.5/)
})
