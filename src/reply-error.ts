/** Sends one of the proxy's own errors: JSON body, code header, no caching. */
import type { FastifyReply } from 'fastify'
import { ERRORS, ERROR_HEADER, errorBody, type ErrorCode } from './errors.js'

/** Codes after which the caller's connection is closed, since unread request bytes may remain. */
const CLOSE_CONNECTION = new Set<ErrorCode>(['PAVE_PROXY_REQUEST_TOO_LARGE', 'PAVE_PROXY_REQUEST_BAD', 'PAVE_PROXY_REQUEST_TIMEOUT'])

export function sendError (reply: FastifyReply, code: ErrorCode): void {
  if (reply.sent) return
  // Headers copied from an upstream answer that then failed must not leak into ours.
  reply.removeHeader('content-length')
  reply.removeHeader('content-encoding')
  reply.removeHeader('transfer-encoding')
  reply
    .code(ERRORS[code].status)
    .header(ERROR_HEADER, code)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
  if (CLOSE_CONNECTION.has(code)) reply.header('connection', 'close')
  void reply.send(errorBody(code))
}
