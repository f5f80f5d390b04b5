/**
 * The proxy's own endpoints: `/healthz` (the process is alive) and `/readyz`
 * (configured, listening, not draining). Neither depends on PAVE being reachable.
 */
import type { FastifyInstance } from 'fastify'

/** Mutable process state the admin endpoints report. */
export interface Lifecycle {
  /** Set on SIGTERM: `/readyz` turns 503 so load balancers stop sending traffic. */
  draining: boolean
}

export async function adminRoutes (app: FastifyInstance, options: { lifecycle: Lifecycle }): Promise<void> {
  const { lifecycle } = options
  app.get('/healthz', async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })
  app.get('/readyz', async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    if (lifecycle.draining) return await reply.code(503).send({ status: 'draining' })
    return { status: 'ready' }
  })
}
