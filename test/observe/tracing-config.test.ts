import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { exportFailureReporter, tracesUrl } from '../../src/observe/tracing.js'
import { CountingExporter, originPort, sampler } from '../../src/observe/trace-sdk.js'
import { attemptAnswered, attemptEnded, endServerSpan } from '../../src/observe/tracing.js'
import type { Span } from '@opentelemetry/api'
import { createMetrics } from '../../src/observe/metrics.js'
import { TRACE_SAMPLERS } from '../../src/config/schema.js'
import { ExportResultCode } from '@opentelemetry/core'
import type { SpanExporter } from '@opentelemetry/sdk-trace-base'
import { pino } from 'pino'
import { logCapture } from '../helpers/proxy.js'

const ACCOUNT_ENV = { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's' }

function problems (env: Record<string, string>, file?: string): string[] {
  try {
    loadConfig({ env: { ...ACCOUNT_ENV, ...env, ...(file !== undefined ? { PAVE_PROXY_CONFIG: '/config.yaml' } : {}) }, readFile: () => file ?? '' })
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems]
    throw error
  }
  return []
}

t.test('defaults: off, http/protobuf, parentbased_always_on, no propagation', async (t) => {
  const { tracing } = loadConfig({ env: ACCOUNT_ENV })
  t.same(tracing, { protocol: 'http/protobuf', sampler: 'parentbased_always_on', exportTimeoutMs: 10_000, disabled: false, propagateUpstream: false })
  t.equal(tracesUrl(tracing), undefined, 'no endpoint: tracing off')
})

t.test('the OpenTelemetry variables', async (t) => {
  const { tracing } = loadConfig({
    env: {
      ...ACCOUNT_ENV,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: ' authorization = Basic%20dXNlcjpwYXNz , x-tenant=a%3Db,, ',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
      OTEL_SERVICE_NAME: 'intake-proxy',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,service.namespace=vehicles',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_SDK_DISABLED: 'false',
      PAVE_PROXY_TRACING_PROPAGATE_UPSTREAM: 'true'
    }
  })
  t.same(tracing, {
    endpoint: 'http://collector:4318',
    protocol: 'http/json',
    headers: { authorization: 'Basic dXNlcjpwYXNz', 'x-tenant': 'a=b' },
    exportTimeoutMs: 2500,
    serviceName: 'intake-proxy',
    resourceAttributes: { 'deployment.environment.name': 'prod', 'service.namespace': 'vehicles' },
    sampler: 'parentbased_traceidratio',
    samplerArg: 0.25,
    disabled: false,
    propagateUpstream: true
  })
  t.equal(tracesUrl(tracing), 'http://collector:4318/v1/traces')
  t.equal(tracesUrl({ ...tracing, endpoint: 'http://collector:4318/otlp/' }), 'http://collector:4318/otlp/v1/traces')
  t.equal(tracesUrl({ ...tracing, tracesEndpoint: 'https://traces.example/ingest' }), 'https://traces.example/ingest', 'the traces endpoint is used as given, and wins')
})

t.test('tracing: in the file, the environment over it', async (t) => {
  const file = 'tracing:\n  tracesEndpoint: https://collector.example/v1/traces\n  headers: { x-api-key: from-file }\n  sampler: always_on\n  propagateUpstream: true\n'
  const { tracing } = loadConfig({ env: { ...ACCOUNT_ENV, PAVE_PROXY_CONFIG: '/c.yaml', OTEL_TRACES_SAMPLER: 'always_off' }, readFile: () => file })
  t.match(tracing, { tracesEndpoint: 'https://collector.example/v1/traces', headers: { 'x-api-key': 'from-file' }, sampler: 'always_off', propagateUpstream: true })
})

t.test('every problem is reported by the setting\'s name, never with a header value', async (t) => {
  const found = problems({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://user:collector-pass-not-real@collector:4318/v1/traces',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization',
    OTEL_TRACES_SAMPLER: 'jaeger_remote',
    OTEL_TRACES_SAMPLER_ARG: '1.5',
    OTEL_SDK_DISABLED: 'yes'
  })
  t.match(found.join('\n'), /OTEL_EXPORTER_OTLP_ENDPOINT must be an absolute http\(s\) URL/)
  t.match(found.join('\n'), /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must not carry credentials/)
  t.match(found.join('\n'), /OTEL_EXPORTER_OTLP_PROTOCOL must be one of http\/protobuf, http\/json/)
  t.match(found.join('\n'), /OTEL_EXPORTER_OTLP_HEADERS must be object/)
  t.match(found.join('\n'), /OTEL_TRACES_SAMPLER must be one of always_on/)
  t.match(found.join('\n'), /OTEL_TRACES_SAMPLER_ARG must be <= 1/)
  t.match(found.join('\n'), /OTEL_SDK_DISABLED must be boolean/)
  t.notOk(found.join('\n').includes('collector-pass-not-real'))
  t.match(problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector' }).join('\n'), /must use http: or https:/)
  t.match(problems({ OTEL_EXPORTER_OTLP_HEADERS: '=value' }).join('\n'), /OTEL_EXPORTER_OTLP_HEADERS must be object/)
  t.match(problems({ OTEL_RESOURCE_ATTRIBUTES: 'team=%E0%A4%A' }).join('\n'), /OTEL_RESOURCE_ATTRIBUTES must be object/, 'a bad percent-encoding')
  t.match(problems({ OTEL_TRACES_SAMPLER_ARG: 'half' }).join('\n'), /OTEL_TRACES_SAMPLER_ARG must be number/)
  t.match(problems({}, 'tracing:\n  headers: { authorization: 42 }\n').join('\n'), /tracing\.headers\.authorization must be string/)
})

t.test('every sampler name builds its sampler', async (t) => {
  const expected: Record<typeof TRACE_SAMPLERS[number], RegExp> = {
    always_on: /^AlwaysOnSampler$/,
    always_off: /^AlwaysOffSampler$/,
    traceidratio: /^TraceIdRatioBased\{0\.5\}$/,
    parentbased_always_on: /^ParentBased\{root=AlwaysOnSampler,/,
    parentbased_always_off: /^ParentBased\{root=AlwaysOffSampler,/,
    parentbased_traceidratio: /^ParentBased\{root=TraceIdRatioBased\{0\.5\},/
  }
  for (const name of TRACE_SAMPLERS) t.match(sampler(name, 0.5).toString(), expected[name], name)
})

t.test('export failures: each counted, logged at most once a minute with the count since', async (t) => {
  const metrics = createMetrics({ processMetrics: false })
  const { stream, lines } = logCapture()
  let now = 0
  const report = exportFailureReporter(metrics, pino(stream), () => now)
  report(new Error('connect ECONNREFUSED'))
  now = 30_000
  report(undefined)
  report(new Error('again'))
  now = 60_000
  report(new Error('a minute later'))
  t.match(await metrics.registry.getSingleMetricAsString('pave_proxy_trace_export_failures_total'), /total 4/)
  t.equal(lines.length, 2)
  t.match(lines[0], /"failures":1/)
  t.match(lines[1], /"failures":3/)
  t.match(lines[1], /a minute later/)
})

t.test('the counting exporter passes flushes and results on', async (t) => {
  let flushed = 0
  const inner: SpanExporter = {
    export: (_spans, done) => { done({ code: ExportResultCode.SUCCESS }) },
    shutdown: async () => {},
    forceFlush: async () => { flushed++ }
  }
  const failures: unknown[] = []
  const exporter = new CountingExporter(inner, (error) => failures.push(error))
  await exporter.forceFlush()
  t.equal(flushed, 1)
  await exporter.forceFlush.call(new CountingExporter({ ...inner, forceFlush: undefined }, () => {}))
  exporter.export([], (result) => t.equal(result.code, ExportResultCode.SUCCESS))
  t.same(failures, [], 'a success is no failure')
  await exporter.shutdown()
})

t.test('PAVE\'s port in the client spans', async (t) => {
  t.equal(originPort(new URL('https://openapi.paveapi.com')), 443)
  t.equal(originPort(new URL('http://pave.internal')), 80)
  t.equal(originPort(new URL('https://pave.internal:8443')), 8443)
})

/** A span that records what is set on it. */
function recordingSpan (): { span: Span, attributes: Record<string, unknown>, status: unknown[], ended: () => boolean } {
  const attributes: Record<string, unknown> = {}
  const status: unknown[] = []
  let ended = false
  const span = {
    setAttribute (key: string, value: unknown) { attributes[key] = value; return span },
    setStatus (value: unknown) { status.push(value); return span },
    end () { ended = true }
  } as unknown as Span
  return { span, attributes, status, ended: () => ended }
}

t.test('the span outcomes: caller, aborted, a 5xx of PAVE\'s, an error without a code', async (t) => {
  const server = recordingSpan()
  endServerSpan(server.span, { status: 503, bytesIn: 10, bytesOut: 20, error: undefined, aborted: true, caller: 'intake-app' })
  t.match(server.attributes, { 'pave_proxy.caller': 'intake-app', 'pave_proxy.aborted': true, 'error.type': '503', 'http.response.status_code': 503 })
  t.notOk('pave_proxy.error_code' in server.attributes, 'PAVE\'s 503, not the proxy\'s')
  t.same(server.status, [{ code: 2 }])
  t.ok(server.ended())

  const client = recordingSpan()
  attemptAnswered(client.span, 201)
  attemptEnded(client.span, new TypeError('no code'))
  t.match(client.attributes, { 'http.response.status_code': 201, 'error.type': 'TypeError' })
  t.ok(client.ended())
})

t.test('a reload that changes tracing is applied for the rest and says tracing needs a restart', async (t) => {
  const { planReload } = await import('../../src/config/reload.js')
  const before = loadConfig({ env: ACCOUNT_ENV })
  const after = loadConfig({ env: { ...ACCOUNT_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' } })
  t.same(planReload(before, after), { ok: true, restartNeeded: ['tracing'] })
})
