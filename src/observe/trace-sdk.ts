/**
 * The OpenTelemetry SDK behind `tracing.ts`, loaded only when tracing is configured:
 * a tracer provider of our own (never registered globally, so several apps in one
 * process and the caller's libraries never share it), the configured sampler, a
 * batch span processor and the OTLP/HTTP exporter (`http/protobuf` or `http/json`).
 *
 * No context manager: spans are parented by passing contexts explicitly, which
 * costs no AsyncLocalStorage and no patched module.
 */
import { ROOT_CONTEXT, SpanKind, defaultTextMapGetter, defaultTextMapSetter, trace, type Span, type SpanOptions } from '@opentelemetry/api'
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler,
  type ReadableSpan, type Sampler, type SpanExporter
} from '@opentelemetry/sdk-trace-base'
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import type { FastifyRequest } from 'fastify'
import { DEFAULT_TRACING_SERVICE_NAME, type TraceSampler, type TracingConfig } from '../config/schema.js'
import type { ResendReason, Tracing } from './tracing.js'

export interface StartTracingOptions {
  readonly upstream: URL
  readonly shutdownTimeoutMs: number
  /** Called once per failed export (a batch of spans). */
  readonly onExportFailure: (error: Error | undefined) => void
}

/** The span kinds' options, made once. */
const SERVER: SpanOptions = { kind: SpanKind.SERVER }
const INTERNAL: SpanOptions = { kind: SpanKind.INTERNAL }

export async function startTracing (config: TracingConfig, url: string, options: StartTracingOptions): Promise<Tracing> {
  const exporter = new CountingExporter(await otlpExporter(config, url), options.onExportFailure)
  const resourceAttributes = config.resourceAttributes ?? {}
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({
      ...resourceAttributes,
      [ATTR_SERVICE_NAME]: config.serviceName ?? resourceAttributes[ATTR_SERVICE_NAME] ?? DEFAULT_TRACING_SERVICE_NAME
    })),
    sampler: sampler(config.sampler, config.samplerArg ?? 1),
    spanProcessors: [new BatchSpanProcessor(exporter)]
  })
  const tracer = provider.getTracer('pave-proxy')
  const propagator = new W3CTraceContextPropagator()
  const host = options.upstream.hostname
  const port = originPort(options.upstream)
  const under = (span: Span): ReturnType<typeof trace.setSpan> => trace.setSpan(ROOT_CONTEXT, span)
  const ratio = config.samplerArg ?? 1
  // Whether a request without a caller's trace context can ever be sampled.
  const rootSampled = !(config.sampler === 'parentbased_always_off' || (config.sampler === 'parentbased_traceidratio' && ratio === 0))
  const neverSampled = config.sampler === 'always_off' || (config.sampler === 'traceidratio' && ratio === 0)

  const begin = (request: FastifyRequest): undefined => {
    const account = request.routeOptions.config.account
    if (account === undefined) return undefined // the proxy's own endpoints are not traced
    const headers = request.headers
    const traced = headers.traceparent !== undefined
    if (!traced && !rootSampled) return undefined
    const span = tracer.startSpan('request', SERVER, traced ? propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter) : ROOT_CONTEXT)
    if (!span.isRecording()) return undefined // not sampled: nothing more is built
    const route = request.routeOptions.url as string
    span.updateName(`${request.method} ${route}`)
    span.setAttributes({
      'http.request.method': request.method,
      'http.route': route,
      'url.scheme': 'http',
      'pave_proxy.account': account
    })
    request.traceSpan = span
    return undefined
  }

  return {
    stage: neverSampled ? undefined : { name: 'trace', check: begin },
    waited (request, stage, startedAt, outcome) {
      const server = request.traceSpan
      if (server === undefined) return
      tracer.startSpan(`wait ${stage}`, { ...INTERNAL, startTime: startedAt, attributes: { 'pave_proxy.stage': stage, 'pave_proxy.outcome': outcome } }, under(server)).end()
    },
    attempt (server, method, resendCount, reason: ResendReason | undefined, headers) {
      const span = tracer.startSpan(method, {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': method,
          'server.address': host,
          'server.port': port,
          ...(resendCount > 0 ? { 'http.request.resend_count': resendCount, 'pave_proxy.resend_reason': reason } : {})
        }
      }, under(server))
      if (headers !== undefined) propagator.inject(under(span), headers, defaultTextMapSetter)
      return span
    },
    // A failed export is counted and logged by the exporter; flushing itself never throws.
    flush: () => provider.forceFlush().catch(() => {}),
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, options.shutdownTimeoutMs) })
      await Promise.race([provider.shutdown().catch(() => {}), timeout])
      clearTimeout(timer)
    }
  }
}

/** The port an origin is reached on. */
export function originPort (url: URL): number {
  if (url.port !== '') return Number(url.port)
  return url.protocol === 'https:' ? 443 : 80
}

/** `OTEL_TRACES_SAMPLER` as OpenTelemetry defines its values. */
export function sampler (name: TraceSampler, ratio: number): Sampler {
  switch (name) {
    case 'always_on': return new AlwaysOnSampler()
    case 'always_off': return new AlwaysOffSampler()
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio)
    case 'parentbased_always_on': return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) })
  }
}

/** The exporter of the configured protocol (each loaded only when chosen). */
async function otlpExporter (config: TracingConfig, url: string): Promise<SpanExporter> {
  const settings = { url, headers: { ...config.headers }, timeoutMillis: config.exportTimeoutMs }
  if (config.protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http')
    return new OTLPTraceExporter(settings)
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto')
  return new OTLPTraceExporter(settings)
}

/** Passes every batch on, and reports each one the collector did not take. */
export class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #onFailure: (error: Error | undefined) => void

  constructor (inner: SpanExporter, onFailure: (error: Error | undefined) => void) {
    this.#inner = inner
    this.#onFailure = onFailure
  }

  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.#onFailure(result.error)
      done(result)
    })
  }

  async shutdown (): Promise<void> {
    await this.#inner.shutdown()
  }

  async forceFlush (): Promise<void> {
    await this.#inner.forceFlush?.()
  }
}
