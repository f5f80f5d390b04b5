/**
 * One access line and the request metrics per request, written when the
 * response closes (finished or aborted). Fastify's default "incoming request" /
 * "request completed" pair is switched off through its log controller.
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { hostname } from 'node:os'
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { pino, type Logger } from 'pino'
import { errorCodeOf } from '../reply-error.js'
import { countRequest, statusClass, type Metrics } from './metrics.js'
import { onResponseClose } from '../response-close.js'
import { callerLabel } from '../inbound/callers.js'
import { audited, type AuditTrail } from './audit.js'
import { endServerSpan } from './tracing.js'

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

/**
 * Writes access lines straight to the logger's destination, in the logger's own JSON
 * line format. Every field of an access line is known in advance and none can hold a
 * header or a credential, so pino's generic path (serializers, redaction, key walking)
 * would only cost time: about a tenth of the proxy's CPU per request when measured.
 * The logger's level still decides: below `info`, no access line is written.
 */
export interface AccessLog {
  readonly write: (fields: AccessFields) => void
  /** Hands the lines still held to the destination at once (on close). */
  readonly flush: () => void
}

export interface AccessFields {
  reqId: string
  method: string
  url: string
  status: number
  durationMs: number
  bytesIn: number
  bytesOut: number
  /** Empty when the request did not reach an account route. */
  account: string
  /** The caller's name, `anonymous` (no callers configured) or `unknown` (none proved). */
  caller: string
  error: string | undefined
  aborted: boolean
  /** The request's trace and server span, when it was traced (32 and 16 hex digits). */
  traceId?: string | undefined
  spanId?: string | undefined
}

export function createAccessLog (logger: Logger): AccessLog {
  const stream = (logger as unknown as Record<symbol, { write: (line: string) => void }>)[pino.symbols.streamSym] as { write: (line: string) => void }
  const head = `{"level":30,"time":`
  const origin = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`
  // The lines of one turn of the event loop go to the destination in one write: each
  // write hands a buffer to a libuv thread (sonic-boom, asynchronous), and one per line
  // was the largest cost of the access line.
  let pending = ''
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    if (pending === '') return
    const lines = pending
    pending = ''
    stream.write(lines)
  }
  return {
    flush,
    write (f) {
      if (!logger.isLevelEnabled('info')) return
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
      pending += (`${head}${Date.now()}${origin},"reqId":"${f.reqId}","method":"${f.method}","url":${JSON.stringify(f.url)},` +
        `"status":${f.status},"durationMs":${f.durationMs},"bytesIn":${f.bytesIn},"bytesOut":${f.bytesOut}` +
        `${f.account !== '' ? `,"account":"${f.account}"` : ''},"caller":"${f.caller}"${f.error !== undefined ? `,"error":"${f.error}"` : ''}` +
        `${f.aborted ? ',"aborted":true' : ''}${f.traceId !== undefined ? `,"traceId":"${f.traceId}","spanId":"${f.spanId as string}"` : ''},"msg":"request completed"}\n`)
    }
  }
}

const kTracked = Symbol('pave-proxy.tracked')
interface Tracked {
  readonly reply: FastifyReply
  /** Held from the start: by the time the response closes, Node may have released the socket. */
  readonly socket: CountedSocket
  readonly metrics: Metrics | undefined
  readonly log: AccessLog
  readonly audit: AuditTrail | undefined
  /** Read at the start for the same reason (Node keeps it once read). */
  readonly remoteAddress: string | undefined
}
type TrackedResponse = ServerResponse & { [kTracked]?: Tracked }

/** Starts tracking a request: in-flight gauge now, access line, counters and audit line (when kept) on close. */
export function trackRequest (request: FastifyRequest, reply: FastifyReply, metrics: Metrics | undefined, log: AccessLog, audit?: AuditTrail): void {
  if (metrics !== undefined) metrics.requestsInFlight.value++
  const socket = request.raw.socket as CountedSocket
  const remoteAddress = audit !== undefined ? socket.remoteAddress : undefined
  ;(reply.raw as TrackedResponse)[kTracked] = { reply, socket, metrics, log, audit, remoteAddress }
  onResponseClose(reply.raw, closeTracked)
}

function closeTracked (res: ServerResponse): void {
  const tracked = (res as TrackedResponse)[kTracked] as Tracked
  if (tracked.metrics !== undefined) tracked.metrics.requestsInFlight.value--
  logAccess(tracked.reply.request, tracked.reply, tracked.socket, tracked.metrics, tracked.log, tracked.audit, tracked.remoteAddress)
}

function logAccess (request: FastifyRequest, reply: FastifyReply, socket: CountedSocket, metrics: Metrics | undefined, log: AccessLog, audit: AuditTrail | undefined, remoteAddress: string | undefined): void {
  // Bytes on the wire since the previous request on this connection, headers included.
  const bytesIn = socket.bytesRead - (socket[kBytesRead] ?? 0)
  const bytesOut = socket.bytesWritten - (socket[kBytesWritten] ?? 0)
  socket[kBytesRead] = socket.bytesRead
  socket[kBytesWritten] = socket.bytesWritten
  const completed = reply.raw.writableFinished
  const account = request.routeOptions.config.account ?? ''
  const error = errorCodeOf(reply.raw)
  const caller = callerLabel(request)
  if (metrics !== undefined) {
    countRequest(metrics, account, request.method, completed ? statusClass(reply.statusCode) : 'aborted', caller)
    if (error !== undefined) metrics.errors.inc({ code: error })
  }
  const span = request.traceSpan
  const trace = span?.spanContext()
  log.write({
    reqId: request.id,
    method: request.method,
    url: request.raw.url as string,
    status: reply.statusCode,
    durationMs: Math.round(reply.elapsedTime * 100) / 100,
    bytesIn,
    bytesOut,
    account,
    caller,
    error,
    aborted: !completed,
    traceId: trace?.traceId,
    spanId: trace?.spanId
  })
  if (audit !== undefined && audited(request.method, reply.statusCode)) {
    const url = request.raw.url as string
    const queryAt = url.indexOf('?')
    audit.write({
      reqId: request.id,
      caller,
      proof: request.caller?.proof,
      remoteAddress,
      account: account !== '' ? account : undefined,
      method: request.method,
      path: queryAt === -1 ? url : url.slice(0, queryAt),
      status: reply.statusCode,
      code: error,
      aborted: !completed
    })
  }
  if (span !== undefined) {
    endServerSpan(span, { status: reply.statusCode, bytesIn, bytesOut, error, aborted: !completed, caller: request.caller?.name })
  }
}
