import t, { type Test } from 'tap'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { SPAN_KIND, startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js'

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'
const CALLER = {
  traceparent: `00-${TRACE}-${PARENT}-01`,
  tracestate: 'congo=t61rcWkgMzE',
  baggage: 'userId=alice'
}

async function received (t: Test, env: Record<string, string>, headers: Record<string, string> = CALLER): Promise<Record<string, string | string[] | undefined>> {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/sessions`, { headers })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  return upstream.received[0]?.headers ?? {}
}

t.test('by default PAVE receives no trace context, tracing off or on', async (t) => {
  const receiver = await startOtlpReceiver()
  t.teardown(() => receiver.close())
  for (const env of [{}, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }] as Array<Record<string, string>>) {
    const headers = await received(t, env)
    t.notOk('traceparent' in headers, 'no traceparent')
    t.notOk('tracestate' in headers, 'no tracestate')
    t.notOk('baggage' in headers, 'no baggage')
  }
})

t.test('propagateUpstream with tracing off: the caller\'s trace context as it came', async (t) => {
  const headers = await received(t, { PAVE_PROXY_TRACING_PROPAGATE_UPSTREAM: 'true' })
  t.equal(headers.traceparent, CALLER.traceparent)
  t.equal(headers.tracestate, CALLER.tracestate)
  t.equal(headers.baggage, CALLER.baggage)
})

t.test('propagateUpstream with tracing on: PAVE receives the attempt\'s client span', async (t) => {
  const receiver = await startOtlpReceiver()
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_TRACING_PROPAGATE_UPSTREAM: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await receiver.close() })
  await (await request(`${proxy.url}/v1/a`, { headers: CALLER })).body.dump()
  await (await request(`${proxy.url}/v1/b`)).body.dump()
  // A caller's trace that is not sampled stays unsampled, and passes as it came.
  const unsampled = `00-${TRACE}-${PARENT}-00`
  await (await request(`${proxy.url}/v1/c`, { headers: { traceparent: unsampled } })).body.dump()
  await proxy.app.tracing?.flush()
  const spans = await receiver.waitForSpans(4)
  const clients = spans.filter((s) => s.kind === SPAN_KIND.client)
  t.equal(clients.length, 2, 'the unsampled request left no span')

  const [a, b, c] = upstream.received.map((r) => r.headers)
  const client = clients.find((s) => s.traceId === TRACE) as ReceivedSpan
  t.equal(a?.traceparent, `00-${TRACE}-${client.spanId}-01`, 'the caller\'s trace, the proxy\'s client span as parent')
  t.equal(a?.tracestate, CALLER.tracestate, 'tracestate carried on')
  t.equal(a?.baggage, CALLER.baggage, 'baggage as it came')
  const own = clients.find((s) => s.traceId !== TRACE) as ReceivedSpan
  t.equal(b?.traceparent, `00-${own.traceId}-${own.spanId}-01`, 'a new trace when the caller sent none')
  t.notOk(b !== undefined && 'tracestate' in b)
  t.equal(c?.traceparent, unsampled, 'an unsampled caller\'s traceparent as it came')
})
