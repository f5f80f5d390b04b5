/**
 * Prometheus metrics (prom-client), one registry per app so tests and several
 * apps in one process never share counters. Every metric is documented in the README.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { CellHistogram } from './cell-histogram.js'

export interface Metrics {
  readonly registry: Registry
  /** Requests answered, by account, method, status class (2xx…5xx, or `aborted`) and caller (a configured name, `anonymous` or `unknown`). */
  readonly requests: Counter<'account' | 'method' | 'status_class' | 'caller'>
  /** Time from sending the request upstream to its response headers, by account (counted in plain cells). */
  readonly upstreamDuration: CellHistogram
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
  /** PAVE's answers passed to callers (after a re-sign, the second one only), by account and status code. */
  readonly upstreamResponses: Counter<'account' | 'status'>
  /** The counts behind `upstreamResponses` not yet scraped: account → status → count (see {@link upstreamStatusCounts}). */
  readonly upstreamCells: Map<string, StatusCounts>
  /** Requests waiting for a place in the admission gate, read at each scrape from {@link MetricsOptions.queued}. */
  readonly queued: Gauge
  /** 1 when the last reload was applied (or none was tried), 0 after a rejected one: the running configuration is not the one on disk. */
  readonly lastReloadSuccessful: Gauge
  /** Requests the proxy answered 429 (a limit reached), by caller, account and `scope` (`caller`, `account`, `upstream`). */
  readonly rateLimited: Counter<'caller' | 'account' | 'scope'>
  /** Pauses of an account's budget after PAVE answered 429 with `Retry-After`. */
  readonly upstreamPauses: Counter<'account'>
  /** 1 while the Redis rate-limit store answers, 0 while limits fall back to `limits.redis.onError`. */
  readonly limitsStoreUp: Gauge
  /** Swaps of the listener's TLS certificate, key or client CA, by result (`applied`, `rejected`). */
  readonly tlsReloads: Counter<'result'>
  /** When the listener's certificate (`server`) and the earliest of its client CAs (`client_ca`) expire, epoch seconds. */
  readonly tlsCertificateExpiry: Gauge<'certificate'>
}

export interface MetricsOptions {
  /** Collect prom-client's default process metrics. Default true. */
  readonly processMetrics?: boolean
  /** Reads the admission queue's length for `pave_proxy_requests_queued`. Default: always 0. */
  readonly queued?: () => number
}

export function createMetrics (options: MetricsOptions = {}): Metrics {
  const registry = new Registry()
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const queued = options.queued ?? (() => 0)
  const requestsInFlight = { value: 0 }
  const requestCells = new Map<string, Map<string, Map<string, Map<string, RequestCell>>>>()
  const upstreamCells = new Map<string, StatusCounts>()
  const metrics: Metrics = {
    requestsInFlight,
    requestCells,
    upstreamCells,
    registry,
    requests: new Counter({
      name: 'pave_proxy_requests_total',
      help: 'Requests answered, by account, method, status class and caller.',
      labelNames: ['account', 'method', 'status_class', 'caller'],
      registers,
      // Counted in plain cells on the hot path (countRequest), added here when scraped.
      collect () { flushRequestCells(this, requestCells) }
    }),
    upstreamDuration: new CellHistogram({
      name: 'pave_proxy_upstream_duration_seconds',
      help: 'Time from sending a request to PAVE to receiving its response headers.',
      labelName: 'account',
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
    upstreamResponses: new Counter({
      name: 'pave_proxy_upstream_responses_total',
      help: 'Answers from PAVE passed to callers, by account and status code.',
      labelNames: ['account', 'status'],
      registers,
      collect () { flushStatusCounts(this, upstreamCells) }
    }),
    queued: new Gauge({
      name: 'pave_proxy_requests_queued',
      help: 'Requests waiting for a place in the admission gate.',
      registers,
      collect () { this.set(queued()) }
    }),
    lastReloadSuccessful: new Gauge({ name: 'pave_proxy_config_last_reload_successful', help: 'Whether the last configuration reload was applied (1) or rejected (0).', registers }),
    rateLimited: new Counter({ name: 'pave_proxy_rate_limited_total', help: 'Requests refused with 429 because a rate limit was reached, by caller, account and scope (caller, account, upstream).', labelNames: ['caller', 'account', 'scope'], registers }),
    upstreamPauses: new Counter({ name: 'pave_proxy_upstream_pauses_total', help: 'Pauses of an account\'s budget after PAVE answered 429 with Retry-After.', labelNames: ['account'], registers }),
    limitsStoreUp: new Gauge({ name: 'pave_proxy_limits_store_up', help: '1 while the Redis rate-limit store answers, 0 while limits follow limits.redis.onError.', registers }),
    tlsReloads: new Counter({ name: 'pave_proxy_tls_reloads_total', help: 'Swaps of the listener\'s TLS certificate, key or client CA, by result.', labelNames: ['result'], registers }),
    tlsCertificateExpiry: new Gauge({ name: 'pave_proxy_tls_certificate_expiry_timestamp_seconds', help: 'When the listener\'s certificate (server) and the earliest of its client CAs (client_ca) expire, in epoch seconds.', labelNames: ['certificate'], registers })
  }
  metrics.lastReloadSuccessful.set(1)
  return metrics
}

/** Records a reload's result: the counter and the last-result gauge. */
export function countReload (metrics: Metrics, result: 'applied' | 'rejected'): void {
  metrics.reloads.inc({ result })
  metrics.lastReloadSuccessful.set(result === 'applied' ? 1 : 0)
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

/** One account's answers from PAVE not yet scraped, by status code: `counts.set(status, (counts.get(status) ?? 0) + 1)`. */
export type StatusCounts = Map<number, number>

/** An account's counts behind `pave_proxy_upstream_responses_total`, found once (per forward context) and added to in place. */
export function upstreamStatusCounts (metrics: Metrics, account: string): StatusCounts {
  let counts = metrics.upstreamCells.get(account)
  if (counts === undefined) metrics.upstreamCells.set(account, counts = new Map())
  return counts
}

/** Counts one answer of PAVE passed to a caller. */
export function countUpstreamResponse (counts: StatusCounts, status: number): void {
  counts.set(status, (counts.get(status) ?? 0) + 1)
}

function flushStatusCounts (counter: Counter<'account' | 'status'>, cells: Map<string, StatusCounts>): void {
  for (const [account, counts] of cells) {
    for (const [status, count] of counts) {
      if (count === 0) continue
      counter.inc({ account, status: String(status) }, count)
      counts.set(status, 0)
    }
  }
}

/** `2xx`, `4xx`… for a status code. */
export function statusClass (status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`
}
