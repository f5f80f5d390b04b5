/**
 * One access line and the request metrics per request, written when the
 * response closes (finished or aborted). Fastify's default "incoming request" /
 * "request completed" pair is switched off through its log controller.
 */
import type { Socket } from 'node:net'
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import { errorCodeOf } from './reply-error.js'
import { countRequest, statusClass, type Metrics } from './metrics.js'

const kBytesWritten = Symbol('pave-proxy.bytesWritten')
const kBytesRead = Symbol('pave-proxy.bytesRead')
type CountedSocket = Socket & { [kBytesWritten]?: number, [kBytesRead]?: number }

/** Silences Fastify's own per-request lines (the access line below replaces them). */
export class QuietLogController extends LogController {
  constructor () {
    super({ requestIdLogLabel: 'reqId' })
  }

  override incomingRequest (): void {}
  override requestCompleted (): void {}
}

/** Starts tracking a request: in-flight gauge now, access line and counters on close. */
export function trackRequest (request: FastifyRequest, reply: FastifyReply, metrics: Metrics, log: FastifyBaseLogger): void {
  metrics.inFlight.inc()
  reply.raw.once('close', () => {
    metrics.inFlight.dec()
    logAccess(request, reply, metrics, log)
  })
}

function logAccess (request: FastifyRequest, reply: FastifyReply, metrics: Metrics, log: FastifyBaseLogger): void {
  // Bytes on the wire since the previous request on this connection, headers included.
  const socket = request.raw.socket as CountedSocket | null
  let bytesIn: number | undefined
  let bytesOut: number | undefined
  /* c8 ignore next -- Node keeps req.socket set for the life of the request */
  if (socket !== null) {
    bytesIn = socket.bytesRead - (socket[kBytesRead] ?? 0)
    bytesOut = socket.bytesWritten - (socket[kBytesWritten] ?? 0)
    socket[kBytesRead] = socket.bytesRead
    socket[kBytesWritten] = socket.bytesWritten
  }
  const completed = reply.raw.writableFinished
  const account = request.routeOptions.config.account ?? ''
  const error = errorCodeOf(reply.raw)
  countRequest(metrics, account, request.method, completed ? statusClass(reply.statusCode) : 'aborted')
  if (error !== undefined) metrics.errors.inc({ code: error })
  log.info({
    reqId: request.id,
    method: request.method,
    url: request.raw.url,
    status: reply.statusCode,
    durationMs: Math.round(reply.elapsedTime * 100) / 100,
    bytesIn,
    bytesOut,
    account: account === '' ? undefined : account,
    error,
    ...(completed ? {} : { aborted: true })
  }, 'request completed')
}
