/**
 * The hot path's shared pieces (issue 15): the lazy request logger, one close
 * listener per response for every stage, the admission gate's fast path, the send
 * timeout armed per connection, counters kept in plain cells until scraped, and
 * the stages the benchmarks' price list leaves out.
 */
import { createServer, request as httpRequest, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect, createServer as createTcpServer, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { pino } from 'pino'
import { request } from 'undici'
import { buildApp } from '../../src/app.js'
import { LazyRequestLogger } from '../../src/observe/logging.js'
import { onResponseClose } from '../../src/response-close.js'
import { AdmissionGate } from '../../src/inbound/admission.js'
import { countRequest, createMetrics, statusClass } from '../../src/observe/metrics.js'
import { logCapture, startProxy, testConfig } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('a request logger is made on first use, with the request id bound, and behaves as pino\'s child', async (t) => {
  const { stream, lines } = logCapture()
  const parent = pino({ level: 'info' }, stream)
  let made = 0
  const counting = { child: (b: Record<string, unknown>, o?: Record<string, unknown>) => { made++; return parent.child(b, o) } }
  const log = new LazyRequestLogger(counting as never, { reqId: 'r-1' }, {})
  t.equal(made, 0, 'nothing made before a line')
  log.info('one')
  log.warn({ a: 1 }, 'two')
  log.error('three')
  log.fatal('four')
  log.debug('below the level')
  log.trace('below the level')
  log.silent('never')
  t.equal(made, 1, 'one child, made once')
  t.equal(log.level, 'info')
  t.equal(log.isLevelEnabled('debug'), false)
  log.level = 'debug'
  log.debug('five')
  t.equal(log.isLevelEnabled('debug'), true)
  log.child({ extra: true }).info('six')
  await new Promise((resolve) => setImmediate(resolve))
  const parsed = lines.map((l) => JSON.parse(l) as { reqId: string, msg: string, extra?: boolean })
  t.same(parsed.map((l) => l.msg), ['one', 'two', 'three', 'four', 'five', 'six'])
  t.ok(parsed.every((l) => l.reqId === 'r-1'), 'every line carries the request id')
  t.equal(parsed[5]?.extra, true)
})

t.test('close hooks run once each, in order, when the response closes', async (t) => {
  const order: string[] = []
  const server = createServer((_req, res) => {
    onResponseClose(res, (r: ServerResponse) => { order.push(`a:${r.writableFinished}`) })
    onResponseClose(res, () => { order.push('b') })
    onResponseClose(res, () => { order.push('c') })
    res.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve, reject) => {
    httpRequest({ port, host: '127.0.0.1', path: '/', agent: false }, (res) => { res.resume(); res.on('end', resolve) }).on('error', reject).end()
  })
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(order, ['a:true', 'b', 'c'])
})

t.test('the admission gate\'s fast path: a free place taken at once, given back to the first waiter', async (t) => {
  const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 1, queueTimeoutMs: 1_000 })
  t.equal(gate.tryEnter(), true)
  t.equal(gate.tryEnter(), false, 'full')
  let granted = false
  const leave = gate.enter(() => { granted = true }, () => t.fail('not refused'))
  t.same([gate.inFlight, gate.queued], [1, 1])
  gate.release()
  t.equal(granted, true, 'the waiter got the place')
  t.same([gate.inFlight, gate.queued], [1, 0])
  leave()
  leave()
  t.same([gate.inFlight, gate.queued], [0, 0], 'given back once')
})

t.test('request counters count in plain cells and reach /metrics when scraped', async (t) => {
  const metrics = createMetrics({ processMetrics: false })
  countRequest(metrics, 'a', 'GET', '2xx', 'anonymous')
  countRequest(metrics, 'a', 'GET', '2xx', 'anonymous')
  countRequest(metrics, 'a', 'POST', '5xx', 'anonymous')
  countRequest(metrics, 'b', 'GET', 'aborted', 'anonymous')
  metrics.requestsInFlight.value = 3
  const first = await metrics.registry.metrics()
  t.match(first, /pave_proxy_requests_total\{account="a",method="GET",status_class="2xx",caller="anonymous"\} 2/)
  t.match(first, /pave_proxy_requests_total\{account="a",method="POST",status_class="5xx",caller="anonymous"\} 1/)
  t.match(first, /pave_proxy_requests_total\{account="b",method="GET",status_class="aborted",caller="anonymous"\} 1/)
  t.match(first, /pave_proxy_requests_in_flight 3/)
  countRequest(metrics, 'a', 'GET', '2xx', 'anonymous')
  const second = await metrics.registry.metrics()
  t.match(second, /pave_proxy_requests_total\{account="a",method="GET",status_class="2xx",caller="anonymous"\} 3/, 'counts add up across scrapes')
  t.match(second, /pave_proxy_requests_total\{account="b",method="GET",status_class="aborted",caller="anonymous"\} 1/, 'cells with nothing new keep their total')
  t.same([statusClass(204), statusClass(404), statusClass(503), statusClass(99), statusClass(700)], ['2xx', '4xx', '5xx', '0xx', '7xx'])
})

t.test('an idle kept-alive connection is still closed at its keep-alive timeout, now that the server listens for timeouts', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  proxy.app.server.keepAliveTimeout = 200
  const socket = connect(proxy.port, '127.0.0.1')
  const started = Date.now()
  let answer = ''
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
  socket.write('GET /v1/sessions/K HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => socket.once('close', resolve))
  t.match(answer, /^HTTP\/1\.1 200/)
  const elapsed = Date.now() - started
  t.ok(elapsed >= 150 && elapsed < 5_000, `closed after ${elapsed} ms`)
})

t.test('the price list\'s switches leave out metrics and the admission gate', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CONNECTIONS: '1' }, leaveOut: ['metrics', 'admission'] })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answers = await Promise.all([1, 2, 3].map(async (i) => (await request(`${proxy.url}/v1/sessions/S${i}`)).statusCode))
  t.same(answers, [200, 200, 200], 'no gate: nothing refused or queued')
  const text = await (await request(`${proxy.url}/metrics`)).body.text()
  t.notMatch(text, /pave_proxy_requests_total\{account/, 'no request counted')
  t.notMatch(text, /pave_proxy_upstream_duration_seconds_count\{account/, 'no latency observed')
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(proxy.logs.some((l) => l.includes('"msg":"request completed"') && l.includes('"account":"default"')), 'the access line stays')

  const { stream } = logCapture()
  const app = await buildApp(testConfig({ upstreamUrl: upstream.url }), { logStream: stream, leaveOut: [] })
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/v1/sessions/X' })).statusCode, 200, 'nothing left out: the default')
})

t.test('an interim answer that comes before the request is fully sent: the deadline counts from the last byte sent', async (t) => {
  const sockets: Socket[] = []
  const upstream = createTcpServer((socket) => {
    sockets.push(socket)
    socket.once('data', () => socket.write('HTTP/1.1 102 Processing\r\n\r\n')) // and never a final answer
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, env: { PAVE_UPSTREAM_TIMEOUT_MS: '400', PAVE_UPSTREAM_RETRIES: '0' } })
  t.teardown(async () => {
    await proxy.close()
    for (const socket of sockets) socket.destroy()
    upstream.close()
  })
  let sentAt = 0
  const body = new Readable({ read () {} })
  body.push('{"a":')
  setTimeout(() => { body.push('1}'); body.push(null); sentAt = Date.now() }, 300)
  const res = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-length': '7' } })
  await res.body.dump()
  const elapsed = Date.now() - sentAt
  t.equal(res.statusCode, 504)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_TIMEOUT')
  t.ok(elapsed >= 350 && elapsed < 2_000, `answered ${elapsed} ms after the last byte was sent`)
})
