/**
 * TLS on the listener: the options the HTTPS server starts with, and the live swap
 * of its certificate, key and client CA (`server.setSecureContext()`).
 *
 * - TLS 1.2 at least (1.3 preferred by OpenSSL), HTTP/1.1 only: ALPN offers `http/1.1`,
 *   so a client that insists on `h2` is refused at the handshake, never half-served.
 * - Client certificates (with a client CA): `request` asks for one and lets the
 *   connection in without one, or with one that does not verify (`socket.authorized`
 *   is then false and the certificate proves nothing, see `client-cert.ts`); `require`
 *   refuses such a connection at the handshake.
 * - The handshake must finish within the headers timeout (Node's default is 120 s).
 * - TLS renegotiation is refused (a TLS 1.2 client could otherwise present another
 *   certificate in the middle of a connection; TLS 1.3 has none).
 * - A swap changes what new connections get; open connections keep the context they
 *   were accepted with, so no connection is dropped. A new context is built first; if
 *   OpenSSL refuses it, the running one stays. TLS session tickets are keyed per
 *   context, so a swap also ends the resumption of sessions verified by the old CA.
 */
import type { X509Certificate } from 'node:crypto'
import { createSecureContext, type SecureContextOptions, type Server as TlsServer, type TlsOptions } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import type { TlsConfig } from '../config/schema.js'
import { LISTENER_MIN_TLS_VERSION, parseCertificates } from '../config/tls-files.js'
import type { Metrics } from '../observe/metrics.js'
import { rfc4514Subject } from './client-cert.js'

/** The only application protocol the listener offers. */
export const LISTENER_ALPN = ['http/1.1']

/** The secure-context part of the listener's options (what a swap replaces). */
export function secureContextOptions (tls: TlsConfig): SecureContextOptions {
  return { cert: tls.cert, key: tls.key, ...(tls.clientCa !== undefined ? { ca: tls.clientCa } : {}), minVersion: LISTENER_MIN_TLS_VERSION }
}

/** Node's own handshake timeout (120 s) would let a silent connection hold a socket that long. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000

/**
 * Everything the HTTPS server starts with (Fastify's `https` option, beside the HTTP options).
 * `handshakeTimeoutMs`: a connection that has not finished its TLS handshake by then is
 * closed; `buildApp` gives it `inbound.headersTimeoutMs`. Default {@link DEFAULT_HANDSHAKE_TIMEOUT_MS}.
 */
export function listenerTlsOptions (tls: TlsConfig, handshakeTimeoutMs: number = DEFAULT_HANDSHAKE_TIMEOUT_MS): TlsOptions {
  return {
    ...secureContextOptions(tls),
    handshakeTimeout: handshakeTimeoutMs,
    ALPNProtocols: LISTENER_ALPN,
    requestCert: tls.clientCa !== undefined,
    rejectUnauthorized: tls.clientCa !== undefined && tls.clientAuth === 'require'
  }
}

export interface ListenerTls {
  /** Puts new material in place for new connections; `false` (logged, counted) when OpenSSL refuses it. */
  swap: (next: TlsConfig) => boolean
}

/** Wires the swap, the renegotiation refusal and the expiry gauge onto a started HTTPS server. */
export function manageListenerTls (server: TlsServer, initial: TlsConfig, metrics: Metrics, log: FastifyBaseLogger): ListenerTls {
  server.on('secureConnection', (socket) => { socket.disableRenegotiation() })
  recordExpiry(initial, metrics)
  return {
    swap: (next) => {
      const options = secureContextOptions(next)
      try {
        // Built once on its own first: when OpenSSL refuses it, the server's state is untouched.
        createSecureContext(options)
      } catch (error) {
        metrics.tlsReloads.inc({ result: 'rejected' })
        log.error({ code: (error as NodeJS.ErrnoException).code }, 'the new listener TLS certificate, key or client CA was refused; the running one stays')
        return false
      }
      server.setSecureContext(options)
      metrics.tlsReloads.inc({ result: 'applied' })
      log.info({ certificate: describeCertificate(next.cert) }, 'listener TLS certificate swapped; open connections keep theirs')
      recordExpiry(next, metrics)
      return true
    }
  }
}

function recordExpiry (tls: TlsConfig, metrics: Metrics): void {
  const leaf = (parseCertificates(tls.cert) as X509Certificate[])[0] as X509Certificate // checked when the configuration was loaded
  metrics.tlsCertificateExpiry.set({ certificate: 'server' }, Date.parse(leaf.validTo) / 1000)
  if (tls.clientCa !== undefined) {
    const cas = parseCertificates(tls.clientCa) as X509Certificate[] // checked when the configuration was loaded
    metrics.tlsCertificateExpiry.set({ certificate: 'client_ca' }, Math.min(...cas.map((ca) => Date.parse(ca.validTo))) / 1000)
  }
}

/** What a log line may say about a certificate: public facts, never the key. */
export function describeCertificate (pem: string): { subject: string, serialNumber: string, validTo: string, fingerprint256: string } {
  const leaf = (parseCertificates(pem) as X509Certificate[])[0] as X509Certificate
  return { subject: rfc4514Subject(leaf.subject), serialNumber: leaf.serialNumber, validTo: leaf.validTo, fingerprint256: leaf.fingerprint256 }
}
