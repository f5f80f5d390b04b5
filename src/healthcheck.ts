#!/usr/bin/env node
/**
 * The container health check: `GET /healthz` on `127.0.0.1:$PORT`, exit 0 on a 200
 * and 1 on anything else (another status, a refused connection, no answer within
 * {@link HEALTHCHECK_TIMEOUT_MS}). It needs only Node.js, so the image needs no curl
 * and no shell: `HEALTHCHECK CMD ["node", "/app/dist/healthcheck.js"]`.
 *
 * It reads only `PORT` (default 8080), the port the proxy in the same container listens
 * on, and `PAVE_PROXY_TLS_CERT_FILE`: when that is set, the listener speaks TLS and the
 * check does too. Without it, a listener that resets a plain request (TLS configured in
 * the YAML file only) is asked again over TLS. Over TLS the listener's certificate is
 * not verified: the check talks to its own container's loopback, sends nothing secret
 * and reads only a status, and the certificate names a service, not 127.0.0.1 (nor is
 * its CA known here). With `clientAuth: require` the check has no client certificate;
 * the listener's refusal of it (TLS alert "certificate required") shows that the
 * process accepted the connection and ran the handshake, and counts as healthy.
 *
 * The proxy's `/healthz` stays open whatever the inbound allowlist or callers.
 */
import { get as getHttp, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { get as getHttps } from 'node:https'

/** The longest wait for the answer (both attempts together). */
export const HEALTHCHECK_TIMEOUT_MS = 2_000

const port = process.env.PORT ?? '8080'
const tlsConfigured = (process.env.PAVE_PROXY_TLS_CERT_FILE ?? '') !== ''
const signal = AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS)

function done (healthy: boolean, reason: string): never {
  process.stdout.write(`${healthy ? 'healthy' : 'unhealthy'}: ${reason}\n`)
  process.exit(healthy ? 0 : 1)
}

function check (tls: boolean): void {
  const options: RequestOptions & { rejectUnauthorized?: boolean } = { signal, ...(tls ? { rejectUnauthorized: false } : {}) }
  const onResponse = (response: IncomingMessage): void => {
    response.resume()
    done(response.statusCode === 200, `/healthz answered ${String(response.statusCode)}${tls ? ' over TLS' : ''}`)
  }
  const request: ClientRequest = tls
    ? getHttps(`https://127.0.0.1:${port}/healthz`, options, onResponse)
    : getHttp(`http://127.0.0.1:${port}/healthz`, options, onResponse)
  request.on('error', (error: NodeJS.ErrnoException) => {
    if (error.name === 'AbortError') done(false, `no answer within ${HEALTHCHECK_TIMEOUT_MS} ms`)
    if (tls && error.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') done(true, 'the TLS listener answered the handshake and requires a client certificate')
    if (!tls && error.code === 'ECONNRESET') {
      check(true) // a TLS listener drops a plain request
      return
    }
    done(false, error.message.split('\n')[0] as string) // OpenSSL's messages run over several lines
  })
}

check(tlsConfigured)
