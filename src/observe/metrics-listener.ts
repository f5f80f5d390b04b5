/**
 * The optional second listener (`metrics.port`): `/metrics`, `/healthz` and
 * `/readyz`, nothing else, so a NetworkPolicy can admit Prometheus to this port
 * without admitting it to the proxy. It is a small Fastify of its own that
 * `buildApp` builds and never starts; `main.ts` listens on it and closing the
 * main app closes it (after the main listener has drained, so the last scrapes
 * still see the drain).
 *
 * Its requests are not proxied calls: no access line, no request metrics, no
 * inbound guard (the port, not `inbound.allow`, decides who reaches it).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { ClockSkew } from '../signing/clock-skew.js'
import { sendError } from '../reply-error.js'
import { QuietLogController } from './access-log.js'
import { adminRoutes, type Lifecycle } from './admin.js'
import type { Metrics } from './metrics.js'

/** Longest time a scraper may take to send its request. */
export const METRICS_LISTENER_REQUEST_TIMEOUT_MS = 10_000

export interface MetricsListenerOptions {
  readonly logger: FastifyBaseLogger
  readonly lifecycle: Lifecycle
  readonly metrics: Metrics
  readonly clockSkew: ClockSkew | undefined
  /** The rate limits' state for `/readyz`, when limits are configured. */
  readonly limits?: (() => Record<string, string>) | undefined
}

export async function buildMetricsListener (options: MetricsListenerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new QuietLogController(),
    bodyLimit: 1024,
    requestTimeout: METRICS_LISTENER_REQUEST_TIMEOUT_MS,
    return503OnClosing: true,
    forceCloseConnections: 'idle'
  })
  app.setNotFoundHandler((_request, reply) => { sendError(reply, 'PAVE_PROXY_ADMIN_NOT_FOUND') })
  await app.register(adminRoutes, { lifecycle: options.lifecycle, metrics: options.metrics, clockSkew: options.clockSkew, limits: options.limits })
  return app
}
