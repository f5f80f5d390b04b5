/**
 * The identity stage (with `callers` configured): who the request comes from.
 *
 * A bearer token (`Authorization: Bearer …`) is looked up among the callers' tokens,
 * else checked as a JWT; without one, a verified client certificate is matched. A
 * proof from outside the caller's `from` blocks proves nothing. No proof, or one that
 * proves no caller: 401 `PAVE_PROXY_CALLER_UNKNOWN` with `WWW-Authenticate: Bearer`.
 *
 * Whatever the outcome, `Authorization` and every header that looks like an identity
 * the proxy or a gateway in front might set are removed from the request: none of the
 * caller's credentials reaches PAVE, and nothing downstream can be told who the caller
 * is by the caller itself. `/healthz` and `/readyz` stay open, and `/metrics` unless
 * `metrics.callers` names who may read it.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyRequest } from 'fastify'
import { comesFrom, kPolicy, type Callers, type KnownCaller } from './callers.js'
import { certificateMatches, verifiedPeerIdentity } from './client-cert.js'
import type { InboundStage, Refusal, StageVerdict } from './pipeline.js'

/** The answer to a request without a valid credential. */
export const CALLER_UNKNOWN: Refusal = Object.freeze({ code: 'PAVE_PROXY_CALLER_UNKNOWN', headers: Object.freeze({ 'www-authenticate': 'Bearer' }) })

/** Headers removed from every request in gateway mode (lowercase, `-`; their `_` spellings too). */
export const IDENTITY_HEADERS = new Set([
  'authorization', 'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-preferred-username',
  'x-forwarded-access-token', 'x-auth-request-user', 'x-auth-request-email', 'x-auth-request-groups',
  'x-auth-request-access-token', 'x-remote-user', 'remote-user', 'x-user', 'x-client-cert', 'x-forwarded-client-cert',
  'x-ssl-client-cert', 'x-ssl-client-dn', 'x-ssl-client-verify', 'ssl-client-cert', 'x-client-dn', 'x-jwt-assertion'
])
/** Any header of the proxy's own namespace (`x-pave-proxy-caller`, …). */
const OWN_PREFIX = 'x-pave-proxy-'

/** Routes open to anyone: the probes. */
const OPEN_ROUTES = new Set(['/healthz', '/readyz'])

/** Where a stage finds the callers in force: swapped whole on reload. */
export interface CallersRef { current: Callers }

export function createIdentityStage (callers: CallersRef): InboundStage {
  return {
    name: 'identity',
    check (request) {
      const route = request.routeOptions.url
      if (route !== undefined && OPEN_ROUTES.has(route)) return undefined
      const table = callers.current
      if (route === '/metrics' && table.metricsOpen) return undefined
      const headers = request.raw.headers
      const authorization = headers.authorization
      removeIdentityHeaders(headers)
      let found: KnownCaller | undefined | Promise<KnownCaller | undefined>
      if (authorization !== undefined) {
        // `Bearer` in any case, one space or more, then the token (Node has trimmed the value, so one is there).
        if (authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') return CALLER_UNKNOWN
        found = table.byBearer(authorization.slice(7).trimStart())
      } else {
        found = byCertificate(request, table)
      }
      if (found instanceof Promise) return found.then((known) => admit(request, known))
      return admit(request, found)
    }
  }
}

function admit (request: FastifyRequest, known: KnownCaller | undefined): StageVerdict {
  if (known === undefined) return CALLER_UNKNOWN
  const from = known[kPolicy].from
  if (from !== undefined && !comesFrom(from, request.raw.socket.remoteAddress)) return CALLER_UNKNOWN
  request.caller = known
  return undefined
}

/** The first caller whose `clientCert` the connection's verified, in-date certificate matches. */
function byCertificate (request: FastifyRequest, table: Callers): KnownCaller | undefined {
  if (table.certificates.length === 0) return undefined
  const identity = verifiedPeerIdentity(request.raw.socket)
  if (identity === undefined) return undefined
  for (const { match, caller } of table.certificates) {
    if (certificateMatches(identity, match)) return caller
  }
  return undefined
}

/** Removes `authorization` and every identity-looking header, whatever its spelling. */
export function removeIdentityHeaders (headers: IncomingHttpHeaders): void {
  for (const name in headers) {
    const plain = name.includes('_') ? name.replaceAll('_', '-') : name
    if (IDENTITY_HEADERS.has(plain) || plain.startsWith(OWN_PREFIX)) delete headers[name]
  }
}
