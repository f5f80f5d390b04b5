import t from 'tap'
import { createServer as createTcpServer, type AddressInfo } from 'node:net'
import { createServer } from 'node:http'
import { request } from 'undici'
import { FORBIDDEN_BODY, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { SPAN_KIND, startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js'

async function freePort (): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const byStart = (a: ReceivedSpan, b: ReceivedSpan): number => (a.startNs < b.startNs ? -1 : 1)

t.test('a connect retry shows as a second attempt under the same server span', async (t) => {
  const receiver = await startOtlpReceiver()
  const port = await freePort()
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${port}`, env: { PAVE_UPSTREAM_RETRIES: '3', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } })
  const upstream = createServer((_req, res) => { res.end('up') })
  t.teardown(async () => {
    await proxy.close()
    await new Promise<void>((resolve) => upstream.close(() => resolve()))
    await receiver.close()
  })
  // The upstream comes up once the first attempt has failed (the retry is pending).
  const pending = request(`${proxy.url}/v1/sessions/ABC`)
  while (!/total\{account="default"\} [1-9]/.test(await proxy.app.metrics.registry.getSingleMetricAsString('pave_proxy_upstream_retries_total'))) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  upstream.listen(port, '127.0.0.1')
  const res = await pending
  t.equal(res.statusCode, 200)
  await res.body.dump()
  await proxy.app.tracing?.flush()
  const spans = await receiver.waitForSpans(3)
  const server = spans.find((s) => s.kind === SPAN_KIND.server) as ReceivedSpan
  const attempts = spans.filter((s) => s.kind === SPAN_KIND.client).sort(byStart)
  t.ok(attempts.length >= 2, `${attempts.length} attempts`)
  t.ok(attempts.every((a) => a.parentSpanId === server.spanId), 'all under the server span')
  const [first] = attempts as [ReceivedSpan]
  const last = attempts[attempts.length - 1] as ReceivedSpan
  t.equal(first.attributes['error.type'], 'ECONNREFUSED', 'the refused connection')
  t.equal(first.status.code, 2)
  t.notOk('http.request.resend_count' in first.attributes)
  t.match(last.attributes, { 'http.request.resend_count': attempts.length - 1, 'pave_proxy.resend_reason': 'connect', 'http.response.status_code': 200 })
  t.equal(server.attributes['http.response.status_code'], 200)
})

t.test('a 403 re-signed after the clock offset moved shows as a second attempt', async (t) => {
  const AHEAD_MS = 10 * 60 * 1000
  const receiver = await startOtlpReceiver()
  const upstream = await startUpstream({
    now: () => Date.now() + AHEAD_MS,
    handler: (_req, res, received) => {
      res.setHeader('date', new Date(Date.now() + AHEAD_MS).toUTCString())
      if (received.signedBy === undefined) res.writeHead(403, { 'content-type': 'application/json' }).end(FORBIDDEN_BODY)
      else res.writeHead(200).end('{}')
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await receiver.close() })
  const res = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  await proxy.app.tracing?.flush()
  const spans = await receiver.waitForSpans(3)
  const server = spans.find((s) => s.kind === SPAN_KIND.server) as ReceivedSpan
  const [refused, resigned] = spans.filter((s) => s.kind === SPAN_KIND.client).sort(byStart) as [ReceivedSpan, ReceivedSpan]
  t.equal(refused.parentSpanId, server.spanId)
  t.equal(resigned.parentSpanId, server.spanId)
  t.match(refused.attributes, { 'http.response.status_code': 403, 'error.type': '403' })
  t.equal(refused.status.code, 2, 'a 403 is a client span error')
  t.match(resigned.attributes, { 'http.response.status_code': 200, 'http.request.resend_count': 1, 'pave_proxy.resend_reason': 'resign' })
  t.equal(resigned.status.code, 0)
  t.equal(server.name, 'POST /*')
  t.equal(server.attributes['http.response.status_code'], 200, 'the caller saw 200')
})
