/**
 * The connection pool to PAVE: undici, keep-alive, certificates verified,
 * with the configured timeouts and an optional private CA.
 */
import { readFileSync } from 'node:fs'
import { rootCertificates } from 'node:tls'
import { Agent, type Dispatcher } from 'undici'
import type { UpstreamConfig } from './config-schema.js'

export function createDispatcher (upstream: UpstreamConfig): Dispatcher {
  // A private CA is added to Node's bundled roots, not put in their place.
  const ca = upstream.caFile !== undefined ? [...rootCertificates, readFileSync(upstream.caFile, 'utf8')] : undefined
  return new Agent({
    connections: upstream.connections,
    keepAliveTimeout: upstream.keepAliveTimeoutMs,
    headersTimeout: upstream.timeoutMs,
    bodyTimeout: upstream.idleTimeoutMs,
    connect: {
      timeout: upstream.connectTimeoutMs,
      rejectUnauthorized: true,
      ...(ca !== undefined ? { ca } : {})
    }
  })
}
