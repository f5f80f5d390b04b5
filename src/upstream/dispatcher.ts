/**
 * The connection pool to PAVE: undici, keep-alive, certificates verified,
 * with the configured timeouts, an optional private CA and an optional egress
 * (corporate) proxy.
 *
 * Through an egress proxy every upstream connection is a CONNECT tunnel (for an
 * `http:` upstream too), so the proxy never parses the signed requests and the
 * same pool, timeouts and TLS settings apply end to end.
 */
import { readFileSync } from 'node:fs'
import { rootCertificates, type ConnectionOptions } from 'node:tls'
import { Agent, EnvHttpProxyAgent, Pool, type Dispatcher } from 'undici'
import type { EgressConfig, UpstreamConfig } from '../config/schema.js'

export function createDispatcher (upstream: UpstreamConfig): Dispatcher {
  const tls = tlsOptions(upstream)
  const pool = {
    connections: upstream.connections,
    keepAliveTimeout: upstream.keepAliveTimeoutMs,
    headersTimeout: upstream.timeoutMs,
    bodyTimeout: upstream.idleTimeoutMs
  }
  const egress = upstream.egress
  if (egress?.httpsProxy === undefined && egress?.httpProxy === undefined) return new Agent({ ...pool, connect: tls })
  return new EnvHttpProxyAgent({
    ...pool,
    // The direct pool (NO_PROXY hosts).
    connect: tls,
    // Given explicitly, '' for unset: undici would otherwise read process.env itself.
    httpsProxy: egress.httpsProxy ?? '',
    httpProxy: egress.httpProxy ?? '',
    noProxy: egress.noProxy ?? '',
    // TLS to PAVE inside the tunnel, and to the egress proxy itself when it is https:.
    requestTls: tls,
    proxyTls: tls,
    // The client that sends CONNECT: a proxy that accepts the connection but never
    // answers the CONNECT counts against the connect timeout, not the response one.
    clientFactory: (origin: URL, options: object) => new Pool(origin, { ...options, headersTimeout: upstream.connectTimeoutMs })
  })
}

/** TLS settings for every connection: certificates verified; a private CA added to Node's roots, not put in their place. */
function tlsOptions (upstream: UpstreamConfig): ConnectionOptions & { timeout: number } {
  const tls = { timeout: upstream.connectTimeoutMs, rejectUnauthorized: true }
  if (upstream.caFile === undefined) return tls
  let pem: string
  try {
    pem = readFileSync(upstream.caFile, 'utf8')
  } catch (error) {
    // The configuration checked the file; this is it vanishing since.
    throw new Error(`upstream.caFile (PAVE_UPSTREAM_CA_FILE): cannot read ${upstream.caFile} (${String((error as NodeJS.ErrnoException).code)})`)
  }
  return { ...tls, ca: [...rootCertificates, pem] }
}

/**
 * A printable description of the egress settings: the proxies' scheme, host and
 * port only (a proxy URL may carry credentials). `undefined` without a proxy.
 */
export function describeEgress (egress: EgressConfig | undefined): string | undefined {
  if (egress?.httpsProxy === undefined && egress?.httpProxy === undefined) return undefined
  const parts: string[] = []
  if (egress.httpsProxy !== undefined) parts.push(`https via ${proxyOrigin(egress.httpsProxy)}`)
  if (egress.httpProxy !== undefined) parts.push(`${egress.httpsProxy === undefined ? 'http and https' : 'http'} via ${proxyOrigin(egress.httpProxy)}`)
  if (egress.noProxy !== undefined) parts.push(`direct for ${egress.noProxy}`)
  return parts.join('; ')
}

/** `scheme://host:port` of a proxy URL (already validated by the configuration), without credentials, path or query. */
export function proxyOrigin (proxyUrl: string): string {
  const url = new URL(proxyUrl)
  return `${url.protocol}//${url.host}`
}
