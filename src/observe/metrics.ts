/**
 * Prometheus metrics (prom-client), one registry per app so tests and several
 * apps in one process never share counters. Every metric is documented in the README.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  readonly registry: Registry
  /** Requests answered, by account, method, status class (2xx…5xx, or `aborted`) and caller (a configured name, `anonymous` or `unknown`). */
  readonly requests: Counter<'account' | 'method' | 'status_class' | 'caller'>
  /** Time from sending the request upstream to its response headers, by account. */
  readonly upstreamDuration: Histogram<'account'>
  /** Errors the proxy answered with itself, by code. */
  readonly errors: Counter<'code'>
  /** Requests being handled now (the gauge reads {@link Metrics.requestsInFlight} when scraped). */
  readonly inFlight: Gauge
  /** The number behind `inFlight`, counted on the hot path without prom-client's label hashing. */
  readonly requestsInFlight: { value: number }
  /** The counts behind `requests` not yet scraped (see {@link countRequest}). */
  readonly requestCells: Map<string, Map<string, Map<string, Map<string, RequestCell>>>>
  /** New tokens minted, by account. */
  readonly tokenRenewals: Counter<'account'>
  /** Learned offset of the upstream's clock from the local clock. */
  readonly clockOffset: Gauge
  /** Configuration reloads, by result (`applied`, `rejected`). */
  readonly reloads: Counter<'result'>
  /** Requests re-signed and sent again after a 403 because the clock offset moved. */
  readonly resigned: Counter<'account'>
  /** Requests retried after a connection failure before any byte was sent. */
  readonly retries: Counter<'account'>
  /** Batches of spans the trace collector did not take (unreachable, refused, timed out). */
  readonly traceExportFailures: Counter
  /** Swaps of the listener's TLS certificate, key or client CA, by result (`applied`, `rejected`). */
  readonly tlsReloads: Counter<'result'>
  /** When the listener's certificate (`server`) and the earliest of its client CAs (`client_ca`) expire, epoch seconds. */
  readonly tlsCertificateExpiry: Gauge<'certificate'>
}

export function createMetrics (options: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const requestsInFlight = { value: 0 }
  const requestCells = new Map<string, Map<string, Map<string, Map<string, RequestCell>>>>()
  return {
    requestsInFlight,
    requestCells,
    registry,
    requests: new Counter({
      name: 'pave_proxy_requests_total',
      help: 'Requests answered, by account, method, status class and caller.',
      labelNames: ['account', 'method', 'status_class', 'caller'],
      registers,
      // Counted in plain cells on the hot path (countRequest), added here when scraped.
      collect () { flushRequestCells(this, requestCells) }
    }),
    upstreamDuration: new Histogram({
      name: 'pave_proxy_upstream_duration_seconds',
      help: 'Time from sending a request to PAVE to receiving its response headers.',
      labelNames: ['account'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers
    }),
    errors: new Counter({ name: 'pave_proxy_errors_total', help: 'Errors answered by the proxy itself, by code.', labelNames: ['code'], registers }),
    inFlight: new Gauge({ name: 'pave_proxy_requests_in_flight', help: 'Requests being handled now.', registers, collect () { this.set(requestsInFlight.value) } }),
    tokenRenewals: new Counter({ name: 'pave_proxy_token_renewals_total', help: 'New PAVE tokens minted, by account.', labelNames: ['account'], registers }),
    clockOffset: new Gauge({ name: 'pave_proxy_clock_offset_seconds', help: 'Learned offset of the upstream clock from the local clock (positive: upstream ahead).', registers }),
    reloads: new Counter({ name: 'pave_proxy_config_reloads_total', help: 'Configuration reloads, by result.', labelNames: ['result'], registers }),
    resigned: new Counter({ name: 'pave_proxy_resigned_requests_total', help: 'Requests re-signed and sent again after a 403 because the clock offset had moved.', labelNames: ['account'], registers }),
    retries: new Counter({ name: 'pave_proxy_upstream_retries_total', help: 'Requests retried after a connection failure before any byte was sent.', labelNames: ['account'], registers }),
    traceExportFailures: new Counter({ name: 'pave_proxy_trace_export_failures_total', help: 'Batches of trace spans the collector did not take.', registers }),
    tlsReloads: new Counter({ name: 'pave_proxy_tls_reloads_total', help: 'Swaps of the listener\'s TLS certificate, key or client CA, by result.', labelNames: ['result'], registers }),
    tlsCertificateExpiry: new Gauge({ name: 'pave_proxy_tls_certificate_expiry_timestamp_seconds', help: 'When the listener\'s certificate (server) and the earliest of its client CAs (client_ca) expire, in epoch seconds.', labelNames: ['certificate'], registers })
  }
}

export interface RequestCell {
  readonly labels: { account: string, method: string, status_class: string, caller: string }
  count: number
}
type RequestCells = Map<string, Map<string, Map<string, Map<string, RequestCell>>>>

/**
 * Counts one answered request. prom-client hashes and validates the label object on
 * every `inc`, children included; the hot path adds to a plain cell per label
 * combination instead (account → method → status class → caller), and the counter takes the
 * cells' counts when it is scraped.
 */
export function countRequest (metrics: Metrics, account: string, method: string, statusClass: string, caller: string): void {
  const cells = metrics.requestCells
  let byMethod = cells.get(account)
  if (byMethod === undefined) cells.set(account, byMethod = new Map())
  let byClass = byMethod.get(method)
  if (byClass === undefined) byMethod.set(method, byClass = new Map())
  let byCaller = byClass.get(statusClass)
  if (byCaller === undefined) byClass.set(statusClass, byCaller = new Map())
  const cell = byCaller.get(caller)
  if (cell === undefined) byCaller.set(caller, { labels: { account, method, status_class: statusClass, caller }, count: 1 })
  else cell.count++
}

function flushRequestCells (counter: Counter<'account' | 'method' | 'status_class' | 'caller'>, cells: RequestCells): void {
  for (const byMethod of cells.values()) {
    for (const byClass of byMethod.values()) {
      for (const byCaller of byClass.values()) {
        for (const cell of byCaller.values()) {
          if (cell.count === 0) continue
          counter.inc(cell.labels, cell.count)
          cell.count = 0
        }
      }
    }
  }
}

const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx']

/** `2xx`, `4xx`… for a status code. */
export function statusClass (status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`
}
