/**
 * The proxy's own endpoints: `/healthz` (the process is alive), `/readyz`
 * (configured, listening, not draining) and `/metrics` (Prometheus text).
 * None depends on PAVE being reachable; none is ever forwarded.
 */
import type { FastifyInstance } from 'fastify'
import type { Metrics } from './metrics.js'
import type { ClockSkew } from '../signing/clock-skew.js'
import { sendError } from '../reply-error.js'

/** Mutable process state the admin endpoints report. */
export interface Lifecycle {
  /** Set on SIGTERM: `/readyz` turns 503 so load balancers stop sending traffic. */
  draining: boolean
}

export interface AdminRoutesOptions {
  readonly lifecycle: Lifecycle
  readonly metrics: Metrics
  readonly clockSkew: ClockSkew | undefined
  /** The rate limits' store and its state (Redis available or not), when limits are configured. */
  readonly limits?: (() => Record<string, string>) | undefined
  /**
   * `false` when a separate metrics listener serves `/metrics`: this one then answers it
   * with 404 `PAVE_PROXY_METRICS_ELSEWHERE` (never forwarded). Default true.
   */
  readonly serveMetrics?: boolean
}

export async function adminRoutes (app: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  const { lifecycle, metrics, clockSkew, limits } = options
  app.get('/healthz', async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })
  app.get('/readyz', async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    const clock = clockSkew !== undefined
      ? { clockOffsetMs: clockSkew.offsetMs, clockOffsetBeyondThreshold: clockSkew.beyondThreshold }
      : {}
    // Redis unavailable is not unready: requests are still decided (by limits.redis.onError).
    const details = limits !== undefined ? { ...clock, limits: limits() } : clock
    if (lifecycle.draining) return await reply.code(503).send({ status: 'draining', ...details })
    return { status: 'ready', ...details }
  })
  if (options.serveMetrics === false) {
    app.get('/metrics', (_request, reply) => { sendError(reply, 'PAVE_PROXY_METRICS_ELSEWHERE') })
    return
  }
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics()
    void reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store')
    return text
  })
}
