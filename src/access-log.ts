/**
 * One access line per request, written by Fastify's own log controller hook when
 * the response has finished (no extra per-request hook). Fastify's default
 * "incoming request"/"request completed" pair is replaced by this single line.
 */
import type { Socket } from 'node:net'
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { ERROR_HEADER } from './errors.js'
import { serializeError } from './logging.js'

const kBytesWritten = Symbol('pave-proxy.bytesWritten')
const kBytesRead = Symbol('pave-proxy.bytesRead')
type CountedSocket = Socket & { [kBytesWritten]?: number, [kBytesRead]?: number }

export class AccessLog extends LogController {
  constructor () {
    super({ requestIdLogLabel: 'reqId' })
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // Bytes on the wire since the previous request on this connection, headers included.
    const socket = request.raw.socket as CountedSocket | null
    let bytesIn: number | undefined
    let bytesOut: number | undefined
    if (socket !== null) {
      bytesIn = socket.bytesRead - (socket[kBytesRead] ?? 0)
      bytesOut = socket.bytesWritten - (socket[kBytesWritten] ?? 0)
      socket[kBytesRead] = socket.bytesRead
      socket[kBytesWritten] = socket.bytesWritten
    }
    const line = {
      method: request.method,
      url: request.raw.url,
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      bytesIn,
      bytesOut,
      account: request.routeOptions.config.account,
      error: reply.getHeader(ERROR_HEADER),
      ...(error != null ? { err: serializeError(error) } : {})
    }
    if (error != null) request.log.warn(line, 'request completed with an error')
    else request.log.info(line, 'request completed')
  }

  override defaultErrorLog (error: Error, request: FastifyRequest): void {
    request.log.error({ err: serializeError(error) }, 'unhandled error')
  }

  override streamError (error: Error, request: FastifyRequest): void {
    request.log.info({ err: serializeError(error) }, 'response stream ended early')
  }
}
