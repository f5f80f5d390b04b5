/**
 * The rate-limit algorithm: GCRA (the generic cell rate algorithm, a token bucket
 * written as one timestamp per key). A key remembers its *theoretical arrival time*
 * (TAT): when the next request would be due if requests came exactly at the
 * steady rate. A request is admitted when, after adding one interval, the TAT is at
 * most `burst` intervals ahead of now. So `burst` requests pass at once after a quiet
 * period, then one per interval; there is no window edge at which a second burst
 * slips through.
 *
 * Times are whole microseconds, the same unit the Redis script uses (Redis `TIME`),
 * so the memory store and the Redis store decide identically.
 */
import type { RateLimitConfig } from '../../config/schema.js'

/** One configured limit, compiled. */
export interface LimitRule {
  readonly requestsPerSecond: number
  readonly burst: number
  /** Time one request costs, µs (`1e6 / requestsPerSecond`). */
  readonly intervalUs: number
  /** How far ahead of now a TAT may run: `burst × intervalUs`. */
  readonly limitUs: number
}

/** Compiles a configured limit; `burst` defaults to the rate rounded up (at least 1). */
export function limitRule (config: RateLimitConfig): LimitRule {
  const burst = config.burst ?? Math.max(1, Math.ceil(config.requestsPerSecond))
  const intervalUs = Math.max(1, Math.round(1_000_000 / config.requestsPerSecond))
  return Object.freeze({ requestsPerSecond: config.requestsPerSecond, burst, intervalUs, limitUs: burst * intervalUs })
}

/** The TAT a key would have if this request were admitted (a key never seen has TAT 0). */
export function nextTat (stored: number, nowUs: number, rule: LimitRule): number {
  return (stored > nowUs ? stored : nowUs) + rule.intervalUs
}

/** How long (µs) before a request with this next TAT would be admitted; ≤ 0: admitted now. */
export function waitUs (next: number, nowUs: number, rule: LimitRule): number {
  return next - nowUs - rule.limitUs
}

/** Whole seconds for `Retry-After` (rounded up, at least 1). */
export function retryAfterSeconds (waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000))
}
