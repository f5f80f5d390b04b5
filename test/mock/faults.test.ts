/** Injected faults do what they say: latency, status, resets and hangs, on chosen paths only. */
import t from 'tap'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { FaultPlan, parseFaultSpec } from '../../src/mock/faults.js'
import { startPaveMock, type PaveMock } from '../../src/mock/server.js'
import { call, signedHeaders } from './client.js'

interface Observed {
  status?: number
  headers?: IncomingHttpHeaders
  body: string
  /** What went wrong, by code: ECONNRESET, a timeout, or an aborted response. */
  error?: string
  ms: number
}

/** One request with node:http, reporting exactly how far the response got. */
function observe (mock: PaveMock, method: string, path: string, timeoutMs = 2_000, body?: string): Promise<Observed> {
  const started = Date.now()
  return new Promise((resolve) => {
    const seen: Observed = { body: '', ms: 0 }
    const done = (error?: string): void => {
      if (error !== undefined) seen.error ??= error
      seen.ms = Date.now() - started
      resolve(seen)
    }
    const req = httpRequest(`${mock.url}${path}`, { method, headers: { ...signedHeaders(mock.accounts[0]!), 'content-type': 'application/json' } }, (res) => {
      seen.status = res.statusCode
      seen.headers = res.headers
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { seen.body += chunk })
      res.on('end', () => done())
      res.on('aborted', () => done('aborted'))
      res.on('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message))
    })
    req.setTimeout(timeoutMs, () => {
      seen.error = 'timeout'
      req.destroy()
    })
    req.on('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message))
    req.on('close', () => { setTimeout(() => done(), 20) })
    req.end(body)
  })
}

t.test('parseFaultSpec reads the command-line form', async (t) => {
  t.same(parseFaultSpec('POST /v1/sessions status=503 times=1'), { path: '/v1/sessions', method: 'POST', status: 503, times: 1 })
  t.same(parseFaultSpec('  get /v1/sessions/* latency=250 reset=mid-body '), { path: '/v1/sessions/*', method: 'GET', latencyMs: 250, reset: 'mid-body' })
  t.same(parseFaultSpec('* hang=before-headers'), { path: '*', method: undefined, hang: 'before-headers' })
  for (const [spec, message] of [
    ['', /expected \[METHOD\] PATH/],
    ['GET', /expected \[METHOD\] PATH/],
    ['GET v1/sessions', /PATH starting with \//],
    ['/x status=99', /status must be an integer from 100 to 599/],
    ['/x status=600', /status must be an integer from 100 to 599/],
    ['/x status', /status must be an integer/],
    ['/x latency=-1', /latency must be an integer from 0/],
    ['/x latency=1.5', /latency must be an integer/],
    ['/x times=0', /times must be an integer from 1/],
    ['/x reset=later', /reset must be before-headers or mid-body/],
    ['/x hang=', /hang must be before-headers or mid-body/],
    ['/x colour=red', /unknown setting "colour"/]
  ] as const) {
    t.throws(() => parseFaultSpec(spec), { message }, spec)
  }
})

t.test('FaultPlan matches by path (exact, prefix, any, RegExp) and method, and counts times', async (t) => {
  const plan = new FaultPlan([
    { path: '/v1/sessions', method: 'post', status: 500, times: 2 },
    { path: /^\/v1\/sessions\/[A-Z]{3}-/, status: 501 },
    { path: '/v1/callbacks/*', status: 502 },
    { path: '*', method: 'DELETE', status: 503 }
  ])
  t.equal(plan.take('GET', '/v1/sessions'), undefined, 'method differs')
  t.equal(plan.take('POST', '/v1/sessions')?.status, 500)
  t.equal(plan.take('POST', '/v1/sessions')?.status, 500)
  t.equal(plan.take('POST', '/v1/sessions'), undefined, 'used up')
  t.equal(plan.take('GET', '/v1/sessions/ABC-1Q2W3E4R5T')?.status, 501)
  t.equal(plan.take('GET', '/v1/sessions/abc'), undefined)
  t.equal(plan.take('GET', '/v1/callbacks/SESSION:COMPLETE')?.status, 502)
  t.equal(plan.take('GET', '/v1/callbacks'), undefined, 'a prefix is not the path itself')
  t.equal(plan.take('DELETE', '/anything')?.status, 503)
  plan.set([])
  t.equal(plan.take('DELETE', '/anything'), undefined, 'set() replaces the rules')
  t.equal(new FaultPlan().take('GET', '/'), undefined, 'none by default')
})

t.test('status: answered before the signature check, nothing created, only as many times as asked', async (t) => {
  const mock = await startPaveMock({ faults: [{ path: '/v1/sessions', method: 'POST', status: 503, times: 1 }, { path: '/v1/callbacks', status: 599 }] })
  t.teardown(mock.close)
  const failed = await call(mock, 'POST', '/v1/sessions', { as: false })
  t.equal(failed.status, 503, 'even unsigned: the fault comes first')
  t.same(failed.json, { message: 'Service Unavailable' })
  t.ok(failed.headers.date, 'with a Date header')
  t.match(mock.requests[0], { fault: { status: 503 }, username: undefined, rejected: undefined })
  const next = await call(mock, 'POST', '/v1/sessions')
  t.equal(next.status, 200, 'times: 1 — the next one goes through')
  t.equal(mock.requests[1]?.fault, undefined)
  t.same((await call(mock, 'GET', '/v1/callbacks')).json, { message: 'Injected fault' }, 'a status without a reason phrase')
  t.equal((await call(mock, 'GET', '/v1/sessions/ABC-1Q2W3E4R5T')).status, 404, 'other paths are untouched')
})

t.test('latency delays the answer', async (t) => {
  const mock = await startPaveMock({ faults: [{ path: '/v1/callbacks', latencyMs: 300 }, { path: '/v1/sessions', latencyMs: 0, status: 502 }] })
  t.teardown(mock.close)
  const slow = await observe(mock, 'GET', '/v1/callbacks')
  t.equal(slow.status, 200)
  t.ok(slow.ms >= 290, `took ${slow.ms} ms`)
  t.equal((await observe(mock, 'POST', '/v1/sessions')).status, 502, 'a zero latency is no latency')
})

t.test('reset before-headers: the connection is reset, no response at all', async (t) => {
  const mock = await startPaveMock({ faults: [{ path: '/v1/sessions', reset: 'before-headers' }] })
  t.teardown(mock.close)
  const seen = await observe(mock, 'POST', '/v1/sessions', 2_000, '{}')
  t.equal(seen.status, undefined)
  t.equal(seen.error, 'ECONNRESET')
  mock.setFaults([])
  t.equal((await call(mock, 'POST', '/v1/sessions')).status, 200, 'setFaults([]) turns it off')
})

t.test('reset mid-body: status, headers and half the body, then a reset; the request did happen', async (t) => {
  const mock = await startPaveMock({ faults: [{ path: '/v1/sessions', method: 'POST', reset: 'mid-body' }] })
  t.teardown(mock.close)
  const seen = await observe(mock, 'POST', '/v1/sessions', 2_000, '{"vehicle": {"vin": "JN1CV6AR9BMXXXXXX"}}')
  t.equal(seen.status, 200)
  const length = Number(seen.headers?.['content-length'])
  t.ok(length > 0)
  t.equal(seen.body.length, Math.floor(length / 2), 'exactly half arrived')
  t.match(seen.error, /^(aborted|ECONNRESET)$/)
  const key = /"session_key":"([A-Z0-9-]+)"/.exec(seen.body)?.[1]
  t.ok(key, 'the half holds the new key')
  t.equal((await call(mock, 'GET', `/v1/sessions/${key ?? ''}`)).status, 200, 'the session was created')
})

t.test('hang before-headers and mid-body: silence until the client gives up; close() still returns', async (t) => {
  const mock = await startPaveMock({
    faults: [{ path: '/v1/callbacks', hang: 'before-headers' }, { path: '/v1/sessions', hang: 'mid-body' }]
  })
  const before = await observe(mock, 'GET', '/v1/callbacks', 400)
  t.equal(before.status, undefined)
  t.equal(before.error, 'timeout')
  const mid = await observe(mock, 'POST', '/v1/sessions', 400)
  t.equal(mid.status, 200)
  t.equal(mid.body.length, Math.floor(Number(mid.headers?.['content-length']) / 2))
  t.equal(mid.error, 'timeout', 'no more bytes came')

  // Hung requests still open when the mock closes are dropped.
  const pending = observe(mock, 'GET', '/v1/callbacks', 10_000)
  while (mock.requests.length < 3) await new Promise((resolve) => setTimeout(resolve, 10))
  const started = Date.now()
  await mock.close()
  const seen = await pending
  t.ok(Date.now() - started < 2_000, 'close() did not wait for the hung request')
  t.not(seen.error, 'timeout', `the client saw the connection go (${String(seen.error)})`)
})

t.test('close() during an injected latency does not wait for it', async (t) => {
  const mock = await startPaveMock({ faults: [{ path: '*', latencyMs: 30_000 }] })
  const pending = observe(mock, 'GET', '/v1/callbacks', 60_000)
  while (mock.requests.length < 1) await new Promise((resolve) => setTimeout(resolve, 10))
  const started = Date.now()
  await mock.close()
  const seen = await pending
  t.ok(Date.now() - started < 2_000, `closed in ${Date.now() - started} ms`)
  t.equal(seen.status, undefined, 'no answer was sent')
})
