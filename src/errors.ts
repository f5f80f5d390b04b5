/**
 * Every error pave-proxy answers with itself: a code, an HTTP status and a safe
 * message (never a secret, a token, a stack or an internal address), sent as JSON
 * `{"message", "code"}` with the code repeated in the `x-pave-proxy-error` header so
 * callers can tell the proxy's answers from PAVE's own.
 */

export const ERROR_HEADER = 'x-pave-proxy-error'

export const ERRORS = {
  PAVE_PROXY_REQUEST_BAD: { status: 400, message: 'The request is malformed.' },
  PAVE_PROXY_REQUEST_BAD_PATH: { status: 400, message: 'The request path is not allowed: it must be an absolute path without dot segments, encoded slashes or backslashes, or empty segments.' },
  PAVE_PROXY_REQUEST_FORBIDDEN: { status: 403, message: 'This caller is not allowed to use the proxy.' },
  PAVE_PROXY_CALLER_UNKNOWN: { status: 401, message: 'No valid credential was presented.' },
  PAVE_PROXY_CALLER_FORBIDDEN: { status: 403, message: 'This caller is not allowed to make this request.' },
  PAVE_PROXY_ROUTE_NOT_FOUND: { status: 404, message: 'No PAVE account is configured for this path prefix.' },
  PAVE_PROXY_METHOD_NOT_ALLOWED: { status: 405, message: 'This method is not proxied.' },
  PAVE_PROXY_REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time.' },
  PAVE_PROXY_REQUEST_TOO_LARGE: { status: 413, message: 'The request body is larger than the proxy accepts.' },
  PAVE_PROXY_REQUEST_HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are larger than the proxy accepts.' },
  PAVE_PROXY_INTERNAL: { status: 500, message: 'The proxy failed to handle the request.' },
  PAVE_PROXY_UPSTREAM_UNREACHABLE: { status: 502, message: 'The PAVE API could not be reached, or closed the connection before answering.' },
  PAVE_PROXY_UPSTREAM_TLS: { status: 502, message: 'The PAVE API\'s TLS certificate could not be verified.' },
  PAVE_PROXY_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'The PAVE API sent a response that is not valid HTTP.' },
  PAVE_PROXY_OVERLOADED: { status: 503, message: 'The proxy is at capacity; retry later.' },
  PAVE_PROXY_UPSTREAM_CONNECT_TIMEOUT: { status: 504, message: 'Connecting to the PAVE API timed out.' },
  PAVE_PROXY_UPSTREAM_TIMEOUT: { status: 504, message: 'The PAVE API did not answer in time.' }
} as const satisfies Record<string, { status: number, message: string }>

export type ErrorCode = keyof typeof ERRORS

/** An error the proxy answers with itself. */
export class ProxyError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  constructor (code: ErrorCode, options?: { cause?: unknown }) {
    super(ERRORS[code].message, options)
    this.name = 'ProxyError'
    this.code = code
    this.statusCode = ERRORS[code].status
  }
}

/** The JSON body of an error answer. */
export function errorBody (code: ErrorCode): string {
  return JSON.stringify({ message: ERRORS[code].message, code })
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH'
])

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'ECONNABORTED', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'
])

/**
 * undici's checks of a request before it contacts anything (arguments, unsupported
 * headers, a factory's return value): a request the proxy built wrong, never an
 * unreachable PAVE, so it is the proxy's fault (500 PAVE_PROXY_INTERNAL).
 */
const PROXY_FAULT_CODES = new Set([
  'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_INVALID_RETURN_VALUE', 'UND_ERR_BPL_MISSING_UPSTREAM', 'UND_ERR_MAX_ORIGINS_REACHED'
])

/**
 * Maps a failure on the way to the upstream (an undici error, possibly wrapped in
 * `cause`) to the proxy's code.
 */
export function classifyUpstreamError (error: unknown): ErrorCode {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof ProxyError) return current.code
    const code = (current as NodeJS.ErrnoException).code ?? ''
    if (PROXY_FAULT_CODES.has(code)) return 'PAVE_PROXY_INTERNAL'
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'PAVE_PROXY_UPSTREAM_CONNECT_TIMEOUT'
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'PAVE_PROXY_UPSTREAM_TIMEOUT'
    if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'PAVE_PROXY_UPSTREAM_TLS'
    // undici's HTTPParserError names the llhttp error in its message only (its `code` is undefined).
    if (code.startsWith('HPE_') || current.name === 'HTTPParserError' || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'PAVE_PROXY_UPSTREAM_BAD_RESPONSE'
    if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') return 'PAVE_PROXY_REQUEST_BAD'
    if (UNREACHABLE_CODES.has(code)) return 'PAVE_PROXY_UPSTREAM_UNREACHABLE'
  }
  return 'PAVE_PROXY_UPSTREAM_UNREACHABLE'
}

/**
 * The code of the error underneath a failure, for logs: the innermost `code` in its
 * `cause` chain (`ECONNREFUSED`, `UND_ERR_NOT_SUPPORTED`…), else the outer error's
 * name (undici's `HTTPParserError` may carry no code), and that error's message.
 */
export function underlyingError (error: unknown): { readonly code: string, readonly message: string } {
  let found: Error | undefined
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (typeof (current as NodeJS.ErrnoException).code === 'string') found = current
  }
  if (found !== undefined) return { code: (found as NodeJS.ErrnoException).code as string, message: found.message }
  if (error instanceof Error) return { code: error.name, message: error.message }
  return { code: typeof error, message: String(error) }
}
