/**
 * OpenTelemetry traces: one server span per proxied request, one client span per
 * attempt to PAVE under it, and a child span for each wait in the inbound pipeline
 * (the admission queue, a limiter round trip).
 *
 * Off unless an OTLP endpoint is configured: then {@link createTracing} returns
 * undefined, nothing of OpenTelemetry is even loaded, and the per-request path makes
 * no tracer call at all. When on, the SDK is loaded once (`trace-sdk.ts`); a request
 * that is not sampled costs one sampler decision, and with a sampler that never
 * samples a request without a caller's `traceparent`, not even that.
 *
 * What a span carries is fixed here and in `trace-sdk.ts`: the method, the route
 * (`/prefix/*`, never the raw path), the account, the caller's name, statuses, the
 * proxy's error code, byte counts, PAVE's host. Never a header value, a credential,
 * a token or a path: the tests scan every exported span for them.
 *
 * This module imports only types from OpenTelemetry, so the access line and the
 * forwarder can call the helpers below without loading the SDK.
 */
import type { Span } from '@opentelemetry/api'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { TracingConfig } from '../config/schema.js'
import type { Metrics } from './metrics.js'

/** How long the drain waits for the last spans to reach the collector. */
export const TRACE_SHUTDOWN_TIMEOUT_MS = 5_000
/** Export failures are logged at most this often (each is counted). */
export const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000

/** Why an attempt to PAVE is not the first one. */
export type ResendReason = 'connect' | 'resign'

/** What the inbound pipeline reports of a stage that made a request wait. */
export type WaitObserver = (request: FastifyRequest, stage: string, startedAt: number, outcome: string) => void

/** Tracing in force (only ever built when configured). */
export interface Tracing {
  /** The pipeline's first stage: starts the server span. Undefined when the sampler can never sample (`always_off`, ratio 0). */
  readonly stage: { readonly name: 'trace', readonly check: (request: FastifyRequest) => undefined } | undefined
  /** Records a wait in the inbound pipeline as a child span (`performance.now()` times). */
  readonly waited: WaitObserver
  /**
   * Starts the client span of one attempt to PAVE under the server span; with `headers`,
   * injects its context as `traceparent`/`tracestate` (`tracing.propagateUpstream`).
   */
  readonly attempt: (server: Span, method: string, resendCount: number, reason: ResendReason | undefined, headers: Record<string, string | string[]> | undefined) => Span
  /** Exports what is buffered now. */
  readonly flush: () => Promise<void>
  /** Exports what is buffered and stops, within {@link TRACE_SHUTDOWN_TIMEOUT_MS}. */
  readonly shutdown: () => Promise<void>
}

export interface TracingOptions {
  readonly metrics: Metrics
  readonly log: FastifyBaseLogger
  /** PAVE's origin, for the client spans' `server.address` and `server.port`. */
  readonly upstream: URL
  /** The longest wait of {@link Tracing.shutdown}. Default {@link TRACE_SHUTDOWN_TIMEOUT_MS}. */
  readonly shutdownTimeoutMs?: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's recording server span, when it is traced (decorated only when tracing is on). */
    traceSpan?: Span | undefined
  }
}

/** The collector's traces URL: `tracesEndpoint` as given, else `endpoint` + `/v1/traces` (OpenTelemetry's rule). */
export function tracesUrl (config: TracingConfig): string | undefined {
  if (config.tracesEndpoint !== undefined) return config.tracesEndpoint
  if (config.endpoint === undefined) return undefined
  return config.endpoint.endsWith('/') ? `${config.endpoint}v1/traces` : `${config.endpoint}/v1/traces`
}

/** Tracing as configured, or undefined when it is off (no endpoint, or `OTEL_SDK_DISABLED`). */
export async function createTracing (config: TracingConfig, options: TracingOptions): Promise<Tracing | undefined> {
  const url = tracesUrl(config)
  if (url === undefined || config.disabled) return undefined
  const { startTracing } = await import('./trace-sdk.js')
  return await startTracing(config, url, {
    upstream: options.upstream,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? TRACE_SHUTDOWN_TIMEOUT_MS,
    onExportFailure: exportFailureReporter(options.metrics, options.log)
  })
}

/** Counts every failed export; logs the first, then at most one line a minute with the count since. */
export function exportFailureReporter (metrics: Metrics, log: FastifyBaseLogger, now: () => number = Date.now): (error: Error | undefined) => void {
  let lastLogged = -Infinity
  let unlogged = 0
  return (error) => {
    metrics.traceExportFailures.inc()
    unlogged++
    const at = now()
    if (at - lastLogged < EXPORT_FAILURE_LOG_INTERVAL_MS) return
    lastLogged = at
    // The error names the collector's answer or the socket error, never the headers sent.
    log.warn({ err: error, failures: unlogged }, 'cannot export traces to the collector (requests are not affected); next report in a minute at most')
    unlogged = 0
  }
}

// Attribute names. Standard ones from the OpenTelemetry semantic conventions (HTTP, stable);
// the proxy's own under `pave_proxy.`.
const ATTR_STATUS = 'http.response.status_code'
const ATTR_ERROR_TYPE = 'error.type'
const STATUS_ERROR = 2 // SpanStatusCode.ERROR, without loading @opentelemetry/api here

/** What the access line knows when the response closes, for the server span's last attributes. */
export interface ServerSpanEnd {
  readonly status: number
  readonly bytesIn: number
  readonly bytesOut: number
  /** The proxy's error code, when it answered with one. */
  readonly error: string | undefined
  readonly aborted: boolean
  /** The caller's name, when callers are configured and it was identified. */
  readonly caller: string | undefined
}

/** Ends a server span with the response's outcome (called once, from the access line). */
export function endServerSpan (span: Span, end: ServerSpanEnd): void {
  span.setAttribute(ATTR_STATUS, end.status)
  span.setAttribute('http.request.size', end.bytesIn)
  span.setAttribute('http.response.size', end.bytesOut)
  if (end.caller !== undefined) span.setAttribute('pave_proxy.caller', end.caller)
  if (end.error !== undefined) {
    span.setAttribute('pave_proxy.error_code', end.error)
    span.setAttribute(ATTR_ERROR_TYPE, end.error)
  }
  if (end.aborted) span.setAttribute('pave_proxy.aborted', true)
  // A server span is an error for a 5xx only (4xx are the caller's).
  if (end.status >= 500) {
    if (end.error === undefined) span.setAttribute(ATTR_ERROR_TYPE, String(end.status))
    span.setStatus({ code: STATUS_ERROR })
  }
  span.end()
}

/** PAVE answered an attempt with this status (a client span is an error from 400). */
export function attemptAnswered (span: Span, status: number): void {
  span.setAttribute(ATTR_STATUS, status)
  if (status >= 400) {
    span.setAttribute(ATTR_ERROR_TYPE, String(status))
    span.setStatus({ code: STATUS_ERROR })
  }
}

/** An attempt is over: its response streamed to the end, or it failed. Only the error's code is kept, never its message. */
export function attemptEnded (span: Span, error: Error | null): void {
  if (error !== null) {
    span.setAttribute(ATTR_ERROR_TYPE, (error as NodeJS.ErrnoException).code ?? error.name)
    span.setStatus({ code: STATUS_ERROR })
  }
  span.end()
}
