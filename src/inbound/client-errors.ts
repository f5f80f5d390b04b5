/**
 * What happens to a caller's connection when Node's HTTP parser refuses its
 * bytes (request smuggling shapes, bad framing, oversized headers) or a
 * caller-side timeout fires: one JSON error in the proxy's format, then the
 * connection is closed, since nothing after the bad bytes can be trusted.
 *
 * Two cases get no answer, only the close: a caller whose connection already
 * failed (reset, broken pipe: nobody to answer), and a connection whose current
 * response has already started (an error status line written into the middle
 * of a response would corrupt it).
 */
import type { Socket } from 'node:net'
import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { ERRORS, ERROR_HEADER, errorBody, type ErrorCode } from '../errors.js'

/**
 * Errors meaning the caller's side of the connection is gone, not that it sent
 * something bad (`HPE_INVALID_EOF_STATE`: the connection ended inside a request).
 */
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'HPE_INVALID_EOF_STATE'])

/** Node keeps the response being written on a connection here (an internal, stable since Node 0.x). */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null }

/** OpenSSL's errors (`ERR_SSL_…`) and Node's TLS ones (`ERR_TLS_HANDSHAKE_TIMEOUT`…). */
function isTlsError (error: NodeJS.ErrnoException): boolean {
  return error.code !== undefined && (error.code.startsWith('ERR_SSL_') || error.code.startsWith('ERR_TLS_'))
}

/** The proxy's code for a parser or timeout error on a caller's connection. */
export function clientErrorCode (error: NodeJS.ErrnoException): ErrorCode {
  if (error.code === 'HPE_HEADER_OVERFLOW') return 'PAVE_PROXY_REQUEST_HEADERS_TOO_LARGE'
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'PAVE_PROXY_REQUEST_TIMEOUT'
  return 'PAVE_PROXY_REQUEST_BAD'
}

/** The raw response for a code: status line, JSON body, the code header, and `connection: close`. */
export function rawErrorResponse (code: ErrorCode): string {
  const { status } = ERRORS[code]
  const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'
  const body = errorBody(code)
  return `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `cache-control: no-store\r\n${ERROR_HEADER}: ${code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

/** Fastify's `clientErrorHandler`: answers once (when it still can) and closes the connection. */
export function createClientErrorHandler (logger: FastifyBaseLogger): (error: NodeJS.ErrnoException, socket: Socket) => void {
  return (error, socket) => {
    if (CONNECTION_LOST.has(error.code ?? '')) {
      logger.debug({ parserError: error.code }, 'a caller\'s connection was lost')
      socket.destroy()
      return
    }
    if (isTlsError(error)) {
      // A failed or timed-out TLS handshake (Node's https server reports it here): there is no
      // session to write an HTTP answer into, and `end()` would wait for one forever.
      logger.debug({ tlsError: error.code }, 'a caller\'s TLS handshake failed')
      socket.destroy()
      return
    }
    const code = clientErrorCode(error)
    const inResponse = (socket as HttpSocket)._httpMessage?.headersSent === true
    logger.info({ code, parserError: error.code, ...(inResponse ? { inResponse } : {}) }, 'refused a malformed request')
    if (socket.writable && !inResponse) socket.end(rawErrorResponse(code))
    else socket.destroy()
  }
}

/** Node checks `headersTimeout` and `requestTimeout` this often at most (its default, 30 s, would let a 10 s limit run to 40 s). */
export const MAX_CONNECTIONS_CHECKING_INTERVAL_MS = 1_000

/**
 * How often Node should check caller connections for the headers and request
 * timeouts: a quarter of the shorter one, at most once a second, at least every 50 ms.
 */
export function connectionsCheckingInterval (inbound: { headersTimeoutMs: number, requestTimeoutMs: number }): number {
  const shortest = inbound.requestTimeoutMs > 0 ? Math.min(inbound.headersTimeoutMs, inbound.requestTimeoutMs) : inbound.headersTimeoutMs
  return Math.max(50, Math.min(MAX_CONNECTIONS_CHECKING_INTERVAL_MS, Math.floor(shortest / 4)))
}
