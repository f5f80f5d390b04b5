import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { ACCOUNT, startUpstream, echoHandler } from '../helpers/upstream.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js'

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CALLER_SPAN = '00f067aa0ba902b7'
const COLLECTOR_TOKEN = 'collector-token-not-real-5f2c'
const CALLER_BEARER = 'caller-bearer-not-real-77aa'
const CALLER_JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub3QtcmVhbCJ9.c2lnbmF0dXJlLW5vdC1yZWFs'

/** One account under `/fleet`, signing as the test upstream's account. */
function fleetConfig (): string {
  const path = join(mkdtempSync(join(tmpdir(), 'pave-proxy-tracing-')), 'pave-proxy.yaml')
  writeFileSync(path, [
    'tracing:',
    '  resourceAttributes: { deployment.environment.name: staging }',
    'accounts:',
    `  - { name: fleet, prefix: /fleet, username: ${ACCOUNT.username}, apiKey: ${ACCOUNT.apiKey}, apiSecret: ${ACCOUNT.secret} }`
  ].join('\n'))
  return path
}

const only = (spans: ReceivedSpan[], kind: number): ReceivedSpan[] => spans.filter((s) => s.kind === kind)
const printable = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))

for (const protocol of ['http/json', 'http/protobuf'] as const) {
  t.test(`${protocol}: a caller's trace is continued by one server span and one client span per attempt, and nothing secret is exported`, async (t) => {
    const receiver = await startOtlpReceiver()
    const upstream = await startUpstream({
      handler: (req, res, received) => {
        if (req.url === '/v1/broken') { res.socket?.destroy(); return }
        echoHandler(req, res, received)
      }
    })
    const proxy = await startProxy({
      upstreamUrl: upstream.url,
      configFile: fleetConfig(),
      env: {
        PAVE_USERNAME: '',
        PAVE_API_KEY: '',
        PAVE_API_SECRET: '',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${COLLECTOR_TOKEN}`,
        ...(protocol === 'http/json' ? { OTEL_SERVICE_NAME: 'pave-proxy-staging' } : {})
      }
    })
    t.teardown(async () => { await proxy.close(); await upstream.close(); await receiver.close() })

    const res = await request(`${proxy.url}/fleet/v1/sessions/SESSION-PATH-ID-42?theme=query-value-77`, {
      headers: {
        traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
        tracestate: 'vendor=caller-state',
        baggage: 'user=alice-in-baggage',
        authorization: `Bearer ${CALLER_BEARER}`,
        'x-caller-jwt': CALLER_JWT,
        'user-agent': 'agent-not-in-spans/1.0'
      }
    })
    t.equal(res.statusCode, 200)
    await res.body.dump()
    const broken = await request(`${proxy.url}/fleet/v1/broken`, { method: 'POST', body: '{}' })
    t.equal(broken.statusCode, 502)
    const brokenCode = broken.headers['x-pave-proxy-error'] as string
    await broken.body.dump()

    await proxy.app.tracing?.flush()
    const spans = await receiver.waitForSpans(4)
    t.equal(spans.length, 4, 'two server spans, two client spans')
    t.ok(receiver.requests.every((r) => r.contentType.includes(protocol === 'http/json' ? 'application/json' : 'application/x-protobuf')), `sent as ${protocol}`)
    t.ok(receiver.requests.every((r) => r.headers.authorization === `Bearer ${COLLECTOR_TOKEN}`), 'OTEL_EXPORTER_OTLP_HEADERS reach the collector, percent-decoded')

    const [server, brokenServer] = only(spans, SPAN_KIND.server).sort((a) => (a.traceId === CALLER_TRACE ? -1 : 1)) as [ReceivedSpan, ReceivedSpan]
    t.equal(server.traceId, CALLER_TRACE, 'the caller\'s trace is continued')
    t.equal(server.parentSpanId, CALLER_SPAN, 'under the caller\'s span')
    t.equal(server.traceState, 'vendor=caller-state', 'with its tracestate')
    t.equal(server.name, 'GET /fleet/*', 'named by method and route, not the raw path')
    t.match(server.attributes, {
      'http.request.method': 'GET',
      'http.route': '/fleet/*',
      'url.scheme': 'http',
      'pave_proxy.account': 'fleet',
      'http.response.status_code': 200
    })
    t.ok((server.attributes['http.request.size'] as number) > 100, 'bytes in')
    t.ok((server.attributes['http.response.size'] as number) > 50, 'bytes out')
    t.notOk('pave_proxy.caller' in server.attributes, 'no caller without callers configured')
    t.notOk('error.type' in server.attributes)
    t.equal(server.status.code, 0, 'status unset on success')
    t.equal(server.resource['service.name'], protocol === 'http/json' ? 'pave-proxy-staging' : 'pave-proxy', 'OTEL_SERVICE_NAME, default pave-proxy')
    t.equal(server.resource['deployment.environment.name'], 'staging', 'resource attributes from the file')

    const clients = only(spans, SPAN_KIND.client)
    const client = clients.find((s) => s.parentSpanId === server.spanId) as ReceivedSpan
    t.ok(client, 'the attempt is a child of the server span')
    t.equal(client.traceId, CALLER_TRACE)
    t.equal(client.name, 'GET')
    t.match(client.attributes, { 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': upstream.port, 'http.response.status_code': 200 })
    t.notOk('http.request.resend_count' in client.attributes, 'a first attempt')
    // undici reports the attempt complete just before or just after the response's close ends the server span.
    t.ok(client.startNs >= server.startNs && client.endNs <= server.endNs + 50_000_000n, 'inside the server span')

    t.equal(brokenServer.name, 'POST /fleet/*')
    t.equal(brokenServer.parentSpanId, '', 'a root span without a caller\'s traceparent')
    t.equal(brokenServer.status.code, 2, 'a 5xx is an error')
    t.match(brokenServer.attributes, { 'http.response.status_code': 502, 'pave_proxy.error_code': brokenCode, 'error.type': brokenCode })
    const brokenClient = clients.find((s) => s.parentSpanId === brokenServer.spanId) as ReceivedSpan
    t.equal(brokenClient.status.code, 2)
    t.type(brokenClient.attributes['error.type'], 'string', 'the failure\'s code')

    // The access lines join the traces.
    const lines = proxy.logs.filter((l) => l.includes('"msg":"request completed"'))
    t.ok(lines.some((l) => l.includes(`"traceId":"${CALLER_TRACE}","spanId":"${server.spanId}"`)), 'access line carries traceId and spanId')
    t.ok(lines.some((l) => l.includes(`"traceId":"${brokenServer.traceId}","spanId":"${brokenServer.spanId}"`)))

    // What PAVE received: no trace context by default.
    for (const received of upstream.received) {
      for (const name of ['traceparent', 'tracestate', 'baggage']) t.notOk(name in received.headers, `PAVE never receives ${name}`)
    }

    // The secret scan: every exported byte, decoded and raw.
    const minted = upstream.received.map((r) => r.headers['api-token'] as string)
    t.ok(minted.length > 0 && minted.every((m) => typeof m === 'string' && m.length > 10))
    const forbidden = [
      ACCOUNT.secret, ACCOUNT.apiKey, ...minted, CALLER_BEARER, CALLER_JWT, COLLECTOR_TOKEN,
      'agent-not-in-spans', 'SESSION-PATH-ID-42', 'query-value-77', 'alice-in-baggage', 'Bearer'
    ]
    const exported = [...receiver.bodies, printable(spans)]
    for (const value of forbidden) t.notOk(exported.some((text) => text.includes(value)), `no span carries ${value.slice(0, 12)}…`)
    t.notOk(proxy.logs.some((l) => l.includes(COLLECTOR_TOKEN)), 'the collector\'s credentials are never logged')
  })
}

t.test('a request that waited in the admission queue shows the wait as a child span', async (t) => {
  const receiver = await startOtlpReceiver()
  let release: () => void = () => {}
  const upstream = await startUpstream({
    handler: (req, res) => {
      if (req.url === '/slow') { release = () => res.writeHead(200).end('slow'); return }
      res.writeHead(200).end('fast')
    }
  })
  const proxy: TestProxy = await startProxy({ upstreamUrl: upstream.url, overload: { maxInFlight: 1 }, env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' } })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await receiver.close() })
  const slow = request(`${proxy.url}/slow`)
  while (upstream.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  const queued = request(`${proxy.url}/fast`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  release()
  await (await slow).body.dump()
  await (await queued).body.dump()
  await proxy.app.tracing?.flush()
  const spans = await receiver.waitForSpans(5)
  const wait = spans.find((s) => s.kind === SPAN_KIND.internal) as ReceivedSpan
  t.ok(wait, 'one wait span')
  t.equal(wait.name, 'wait admission')
  t.match(wait.attributes, { 'pave_proxy.stage': 'admission', 'pave_proxy.outcome': 'passed' })
  const parent = spans.find((s) => s.spanId === wait.parentSpanId) as ReceivedSpan
  t.equal(parent.kind, SPAN_KIND.server, 'under the waiting request\'s server span')
  t.ok(Number(wait.endNs - wait.startNs) / 1e6 >= 50, `waited ${Number(wait.endNs - wait.startNs) / 1e6} ms`)
  t.equal(spans.filter((s) => s.kind === SPAN_KIND.server).length, 2)
  t.notOk(spans.some((s) => s.attributes['http.route'] === undefined && s.kind === SPAN_KIND.server), 'every server span has its route')

  // An untraced request (the caller's trace is not sampled) that waits leaves no span.
  const before = receiver.spans.length
  const again = request(`${proxy.url}/slow`)
  while (upstream.received.length < 3) await new Promise((resolve) => setTimeout(resolve, 10))
  const untraced = request(`${proxy.url}/fast`, { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' } })
  await new Promise((resolve) => setTimeout(resolve, 50))
  release()
  await (await again).body.dump()
  t.equal((await untraced).statusCode, 200)
  await proxy.app.tracing?.flush()
  await receiver.waitForSpans(before + 2)
  t.equal(receiver.spans.filter((s) => s.kind === SPAN_KIND.internal).length, 1, 'still one wait span')
})

t.test('the proxy\'s own endpoints are not traced', async (t) => {
  const receiver = await startOtlpReceiver()
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' } })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await receiver.close() })
  for (const path of ['/healthz', '/readyz', '/metrics']) await (await request(proxy.url + path)).body.dump()
  await (await request(`${proxy.url}/v1/x`)).body.dump()
  await proxy.app.tracing?.flush()
  const spans = await receiver.waitForSpans(2)
  t.same(spans.map((s) => s.name).sort(), ['GET', 'GET /*'], 'only the proxied request (an endpoint ending in / gets v1/traces appended)')
})
