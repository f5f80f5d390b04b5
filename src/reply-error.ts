/** Sends one of the proxy's own errors: JSON body, code header, no caching. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { ERRORS, ERROR_HEADER, errorBody, type ErrorCode } from './errors.js'

/** Marks a response with the proxy's error code, for the access line and metrics. */
export const kErrorCode = Symbol('pave-proxy.errorCode')
type MarkedResponse = ServerResponse & { [kErrorCode]?: ErrorCode }

/** The proxy's error code a response was answered with, if any. */
export function errorCodeOf (res: ServerResponse): ErrorCode | undefined {
  return (res as MarkedResponse)[kErrorCode]
}

/** Codes after which the caller's connection is closed, since unread request bytes may remain. */
const CLOSE_CONNECTION = new Set<ErrorCode>(['PAVE_PROXY_REQUEST_TOO_LARGE', 'PAVE_PROXY_REQUEST_BAD', 'PAVE_PROXY_REQUEST_TIMEOUT'])

/** Through Fastify, for errors found before a request is handed to the forwarder. */
export function sendError (reply: FastifyReply, code: ErrorCode): void {
  /* c8 ignore next -- defensive: every caller answers once */
  if (reply.sent) return
  ;(reply.raw as MarkedResponse)[kErrorCode] = code
  reply
    .code(ERRORS[code].status)
    .header(ERROR_HEADER, code)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
  if (CLOSE_CONNECTION.has(code)) reply.header('connection', 'close')
  void reply.send(errorBody(code))
}

/** On the raw response, for errors found by the forwarder (which owns the response). */
export function writeRawError (res: ServerResponse, code: ErrorCode, requestId: string): void {
  ;(res as MarkedResponse)[kErrorCode] = code
  const body = errorBody(code)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [ERROR_HEADER]: code,
    'x-request-id': requestId
  }
  if (CLOSE_CONNECTION.has(code)) headers.connection = 'close'
  else if (!res.req.complete) drainBody(res.req)
  res.writeHead(ERRORS[code].status, headers)
  res.end(body)
}

/**
 * Reads and discards the rest of a body the forwarder will no longer send, as Node does
 * for a body nobody consumed: left paused on the socket, it would hide the caller's
 * close (the connection held open until the request timeout) and block the next request.
 * Closing instead would reset the connection under the unread bytes, and the caller could
 * lose the answer. The inbound timeouts bound how long the rest may take.
 */
function drainBody (req: IncomingMessage): void {
  req.unpipe()
  req.resume()
}
