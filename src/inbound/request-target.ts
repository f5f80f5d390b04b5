/**
 * Which requests the proxy accepts, before anything is routed or forwarded.
 *
 * The target ({@link isAcceptableTarget}, for every request): only origin-form
 * targets (`/path?query`) of printable ASCII whose path has one meaning whatever
 * decodes or normalises it downstream: no dot segments (plain or
 * percent-encoded), no encoded slash, backslash, `;` or NUL, no backslash, no `;`
 * path parameters, no fragment, no empty segments, no malformed or overlong
 * percent-encoding, and no percent-encoded unreserved character (RFC 3986 §2.3:
 * `/%74est` *is* `/test`, so a router that decodes and a prefix that does not
 * would disagree). Such a path routes to one account only, and reaches PAVE
 * exactly as the caller wrote it.
 *
 * The message ({@link messageProblem}, for proxied requests): at most
 * {@link MAX_REQUEST_HEADERS} header fields, HTTP/1.0 or 1.1, exactly one well-formed `Host` (RFC 9112 §3.2; the proxy sends the upstream's
 * own, but a request that names two hosts is not one request), and a
 * `Transfer-Encoding`, when present, of exactly `chunked` on HTTP/1.1 (RFC 9112
 * §6.1: anything else is faulty framing; Node's parser already refuses most of it).
 */
import type { IncomingMessage } from 'node:http'
import type { ErrorCode } from '../errors.js'
import { refusal, type InboundStage } from './pipeline.js'

/** Percent-encodings refused anywhere in the path: `/`, `\`, `;`, NUL, and every unreserved character. */
const REFUSED_ENCODINGS = /%(?:2f|5c|3b|00|[46][1-9a-f]|[57][0-9a]|3[0-9]|2[de]|5f|7e)/i

/** True when the target is safe to route and forward as is. */
export function isAcceptableTarget (target: string): boolean {
  if (target.charCodeAt(0) !== 47 /* / */ || target.charCodeAt(1) === 47) return false
  // Printable ASCII only (RFC 9112 §3.2): raw bytes above 0x7e would not reach PAVE as sent.
  if (/[^\x21-\x7e]/.test(target)) return false
  const queryAt = target.indexOf('?')
  const path = queryAt === -1 ? target : target.slice(0, queryAt)
  // Fast path: most PAVE paths hold none of the characters that need a closer look.
  if (!/[%\\;.#]|\/\//.test(path)) return true
  if (path.includes('\\') || path.includes(';') || path.includes('#') || path.includes('//')) return false
  if (path.includes('%')) {
    if (REFUSED_ENCODINGS.test(path)) return false
    try {
      decodeURIComponent(path) // refuses malformed and overlong UTF-8 sequences
    } catch {
      return false
    }
  }
  for (const segment of path.split('/')) {
    if (segment === '.' || segment === '..') return false
  }
  return true
}

/** Most header fields in a proxied request (Envoy's `max_headers_count` default); more: 431. Node alone would drop those past 2000 silently. */
export const MAX_REQUEST_HEADERS = 100

/** `Host` per RFC 3986 §3.2.2-3: an IP literal in brackets or a reg-name (possibly empty), then an optional port. */
const HOST_PATTERN = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{0,5})?$/

/**
 * Why a request's message cannot be forwarded, as the proxy's error code, or
 * `undefined` when it can. Node's parser has already refused malformed framing
 * (CL+TE, duplicate lengths, obs-fold, bare CR/LF, ...); these are the shapes it lets through.
 */
export function messageProblem (raw: IncomingMessage): ErrorCode | undefined {
  if (raw.rawHeaders.length > 2 * MAX_REQUEST_HEADERS) return 'PAVE_PROXY_REQUEST_HEADERS_TOO_LARGE'
  if (raw.httpVersionMajor !== 1 || (raw.httpVersionMinor !== 0 && raw.httpVersionMinor !== 1)) return 'PAVE_PROXY_REQUEST_BAD'
  let hosts = 0
  for (let i = 0; i < raw.rawHeaders.length; i += 2) {
    if ((raw.rawHeaders[i] as string).length === 4 && (raw.rawHeaders[i] as string).toLowerCase() === 'host') hosts++
  }
  if (hosts > 1) return 'PAVE_PROXY_REQUEST_BAD'
  const host = raw.headers.host
  if (host === undefined ? raw.httpVersionMinor === 1 : !HOST_PATTERN.test(host)) return 'PAVE_PROXY_REQUEST_BAD'
  const transferEncoding = raw.headers['transfer-encoding']
  if (transferEncoding !== undefined && (raw.httpVersionMinor === 0 || transferEncoding.trim().toLowerCase() !== 'chunked')) return 'PAVE_PROXY_REQUEST_BAD'
  return undefined
}

const BAD_PATH = refusal('PAVE_PROXY_REQUEST_BAD_PATH')

/** The pipeline's first stage, for every request. */
export const targetStage: InboundStage = {
  name: 'target',
  check: (request) => isAcceptableTarget(request.raw.url as string) ? undefined : BAD_PATH
}
