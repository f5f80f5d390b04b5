import t, { type Test } from 'tap'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js'

const SAMPLED = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

async function setUp (t: Test, env: Record<string, string>): Promise<{ proxy: TestProxy, receiver: OtlpReceiver, call: (headers?: Record<string, string>) => Promise<void> }> {
  const receiver = await startOtlpReceiver()
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...env } })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await receiver.close() })
  const call = async (headers: Record<string, string> = {}): Promise<void> => {
    const res = await request(`${proxy.url}/v1/sessions`, { headers })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  return { proxy, receiver, call }
}

const accessLines = (proxy: TestProxy): string[] => proxy.logs.filter((l) => l.includes('"msg":"request completed"'))

for (const [sampler, arg] of [['always_off', undefined], ['traceidratio', '0']] as const) {
  t.test(`${sampler}${arg !== undefined ? ` ${arg}` : ''}: no span is ever started, not even for a sampled caller`, async (t) => {
    const { proxy, receiver, call } = await setUp(t, { OTEL_TRACES_SAMPLER: sampler, ...(arg !== undefined ? { OTEL_TRACES_SAMPLER_ARG: arg } : {}) })
    t.ok(proxy.app.tracing, 'tracing is configured')
    t.equal(proxy.app.tracing?.stage, undefined, 'but its stage is left out of the pipeline')
    await call()
    await call({ traceparent: SAMPLED })
    await proxy.app.tracing?.flush()
    t.same(receiver.spans, [])
    t.notOk(accessLines(proxy).some((l) => l.includes('traceId')), 'access lines without a trace')
  })
}

for (const [sampler, arg] of [['parentbased_always_off', undefined], ['parentbased_traceidratio', '0']] as const) {
  t.test(`${sampler}: only a caller's sampled trace is recorded`, async (t) => {
    const { proxy, receiver, call } = await setUp(t, { OTEL_TRACES_SAMPLER: sampler, ...(arg !== undefined ? { OTEL_TRACES_SAMPLER_ARG: arg } : {}) })
    await call()
    await call({ traceparent: SAMPLED })
    await call({ traceparent: SAMPLED.replace(/01$/, '00') })
    await proxy.app.tracing?.flush()
    const spans = await receiver.waitForSpans(2)
    t.equal(spans.length, 2, 'the sampled caller\'s request: server and client span')
    t.ok(spans.every((s) => s.traceId === '0af7651916cd43dd8448eb211c80319c'))
    const lines = accessLines(proxy)
    t.equal(lines.filter((l) => l.includes('"traceId"')).length, 1, 'one access line with a trace')
  })
}

t.test('parentbased_always_on (the default) does not record a caller\'s unsampled trace; traceidratio 1 samples all', async (t) => {
  const first = await setUp(t, {})
  await first.call({ traceparent: SAMPLED.replace(/01$/, '00') })
  await first.call()
  await first.proxy.app.tracing?.flush()
  const spans = await first.receiver.waitForSpans(2)
  t.equal(spans.length, 2, 'only the request without a traceparent')
  t.ok(spans.every((s) => s.parentSpanId === '' || s.kind === SPAN_KIND.client))

  const second = await setUp(t, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attributes,team=vehicles%20intake' })
  await second.call({ traceparent: SAMPLED.replace(/01$/, '00') })
  await second.proxy.app.tracing?.flush()
  const [span] = await second.receiver.waitForSpans(2)
  t.equal(span?.resource['service.name'], 'from-attributes', 'service.name from OTEL_RESOURCE_ATTRIBUTES when OTEL_SERVICE_NAME is unset')
  t.equal(span?.resource.team, 'vehicles intake', 'values percent-decoded')
})

t.test('OTEL_SDK_DISABLED=true turns tracing off despite an endpoint', async (t) => {
  const { proxy, receiver, call } = await setUp(t, { OTEL_SDK_DISABLED: 'true' })
  t.equal(proxy.app.tracing, undefined)
  await call({ traceparent: SAMPLED })
  t.same(receiver.spans, [])
})
