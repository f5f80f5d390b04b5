/**
 * Two bounds on the upstream's answer that undici's own timeouts leave open,
 * as an interceptor around the upstream pool:
 *
 * - undici restarts its `headersTimeout` on every interim (1xx) response, so an
 *   upstream that sends `102 Processing` every few seconds would hold a request,
 *   and its caller, forever. Here the wait for the final response counts from
 *   the moment the request was fully sent, whatever comes before it; past
 *   `timeoutMs` the request ends as PAVE_PROXY_UPSTREAM_TIMEOUT (504).
 * - undici accepts any number of interim responses; past
 *   {@link MAX_INTERIM_RESPONSES} the request ends as
 *   PAVE_PROXY_UPSTREAM_BAD_RESPONSE (502).
 *
 * Either way the upstream connection is closed, so nothing of that answer is
 * ever read as the answer to another request.
 *
 * Until a first interim response arrives, undici's own `headersTimeout` (the pool's,
 * which `dispatcher.ts` sets to the same `timeoutMs`, and which undici refreshes when
 * the request's last byte is sent) already is this deadline: the timer here is armed
 * only then, for what is left of the wait, so the common request makes no timer.
 *
 * The same per-request handler passes the response's trailers to the caller's
 * response (the request's `opaque`) before undici ends it (`response-trailers.ts`),
 * so trailers cost no handler of their own.
 */
import type { Dispatcher } from 'undici'
import { ProxyError } from '../errors.js'
import { passTrailers } from './response-trailers.js'

/** More interim responses than this to one request is not an answer. */
export const MAX_INTERIM_RESPONSES = 16

/**
 * undici's callback interface, which a `Request` calls on its handler and which the
 * handler an interceptor receives (undici's `WrapHandler`) implements (all but
 * `onRequestSent`, which only the outermost handler gets).
 */
interface LegacyHandler {
  onConnect: (abort: (error?: Error) => void, context?: unknown) => void
  onResponseStarted: () => void
  onHeaders: (statusCode: number, headers: Buffer[], resume: () => void, statusText: string) => boolean
  onData: (chunk: Buffer) => boolean
  onComplete: (trailers: Buffer[] | null) => void
  onError: (error: Error) => void
  onUpgrade: (statusCode: number, headers: Buffer[] | null, socket: unknown) => void
}

class DeadlineHandler implements LegacyHandler {
  readonly #handler: LegacyHandler
  readonly #timeoutMs: number
  /** The request's `opaque`: the caller's response, for the forwarder's requests. */
  readonly #opaque: unknown
  #abort: ((error?: Error) => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #interim = 0
  /** When the request was fully sent (performance.now()); NaN before. */
  #sentAt = Number.NaN

  constructor (handler: LegacyHandler, timeoutMs: number, opaque: unknown) {
    this.#handler = handler
    this.#timeoutMs = timeoutMs
    this.#opaque = opaque
  }

  #end (error: ProxyError): void {
    this.#stop()
    this.#abort?.(error)
  }

  #stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  onConnect (abort: (error?: Error) => void, context?: unknown): void {
    this.#abort = abort
    this.#handler.onConnect(abort, context)
  }

  #arm (): void {
    const left = this.#timeoutMs - (performance.now() - this.#sentAt)
    this.#timer = setTimeout(() => this.#end(new ProxyError('PAVE_PROXY_UPSTREAM_TIMEOUT')), Math.max(0, left))
  }

  onRequestSent (): void {
    this.#sentAt = performance.now()
    // An interim answer before the request was fully sent: the deadline starts now.
    if (this.#interim > 0) {
      this.#stop()
      this.#arm()
    }
    // Not passed on: undici's WrapHandler, the handler an interceptor receives, has no such callback.
  }

  onResponseStarted (): void {
    this.#handler.onResponseStarted()
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) {
      if (++this.#interim > MAX_INTERIM_RESPONSES) {
        this.#end(new ProxyError('PAVE_PROXY_UPSTREAM_BAD_RESPONSE'))
        return false
      }
      // undici restarts its headers timeout now: from here on, this timer keeps the deadline.
      if (this.#timer === undefined && !Number.isNaN(this.#sentAt)) this.#arm()
    } else {
      this.#stop()
    }
    return this.#handler.onHeaders(statusCode, headers, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    return this.#handler.onData(chunk)
  }

  onComplete (trailers: Buffer[] | null): void {
    this.#stop()
    if (trailers !== null && trailers.length > 0) passTrailers(this.#opaque, trailers)
    this.#handler.onComplete(trailers)
  }

  onError (error: Error): void {
    this.#stop()
    this.#handler.onError(error)
  }

  /* c8 ignore next 4 -- the proxy never sends CONNECT or Upgrade upstream */
  onUpgrade (statusCode: number, headers: Buffer[] | null, socket: unknown): void {
    this.#stop()
    this.#handler.onUpgrade(statusCode, headers, socket)
  }
}

/** The pool, with the deadline and the interim-response bound applied to every request. */
export function withResponseDeadline (dispatcher: Dispatcher, timeoutMs: number): Dispatcher {
  return dispatcher.compose((dispatch) => (options, handler) =>
    dispatch(options, new DeadlineHandler(handler as LegacyHandler, timeoutMs, (options as { opaque?: unknown }).opaque) as Dispatcher.DispatchHandler))
}
