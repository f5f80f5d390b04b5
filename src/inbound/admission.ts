/**
 * Capacity: how many proxied requests run at once, how many wait, for how long,
 * and how long a caller that stopped reading may hold its place.
 *
 * - At most `maxInFlight` proxied requests are past this gate at any time (by
 *   default the upstream pool's `connections`, so undici's own queue, which has
 *   no bound, stays empty).
 * - Beyond that, up to `maxQueued` requests wait, first come first served, each
 *   at most `queueTimeoutMs`; a request that finds the queue full, or waits too
 *   long, is answered 503 `PAVE_PROXY_OVERLOADED` with `Retry-After: 1`. A caller
 *   that goes away while waiting leaves the queue.
 * - Once a proxied request's response has started, a caller that reads nothing
 *   for `sendTimeoutMs` (its socket makes no write progress) is disconnected,
 *   which cancels the upstream request and frees the place (nginx's
 *   `send_timeout`). A wait for the upstream is not the caller's silence: the
 *   upstream timeouts bound that.
 *
 * Memory is bounded by `maxInFlight + maxQueued` requests (each a socket and a
 * few kilobytes) plus the sockets that are refused at once.
 */
import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { onResponseClose } from '../response-close.js'
import type { Config } from '../config/schema.js'
import type { InboundStage, Refusal, StageVerdict } from './pipeline.js'

export { DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT_MS, DEFAULT_SEND_TIMEOUT_MS } from '../config/schema.js'
/** Seconds a refused caller is told to wait (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 1

export interface OverloadOptions {
  /** Most proxied requests in flight at once. Default: `upstream.connections` (128). */
  readonly maxInFlight: number
  /** Most requests waiting for a place; more are refused at once. Default {@link DEFAULT_MAX_QUEUED}. */
  readonly maxQueued: number
  /** Longest wait for a place, in ms. Default {@link DEFAULT_QUEUE_TIMEOUT_MS}. */
  readonly queueTimeoutMs: number
  /** Longest time a started response may make no progress to its caller, in ms. Default {@link DEFAULT_SEND_TIMEOUT_MS}. */
  readonly sendTimeoutMs: number
}

/** The limits in force: those given (tests), else the configuration's (`maxInFlight` defaults to the upstream pool's size). */
export function overloadOptions (config: Config, given: Partial<OverloadOptions> = {}): OverloadOptions {
  return {
    maxInFlight: given.maxInFlight ?? config.capacity.maxInFlight ?? config.upstream.connections,
    maxQueued: given.maxQueued ?? config.capacity.maxQueued,
    queueTimeoutMs: given.queueTimeoutMs ?? config.capacity.queueTimeoutMs,
    sendTimeoutMs: given.sendTimeoutMs ?? config.capacity.sendTimeoutMs
  }
}

interface Waiter {
  readonly grant: () => void
  readonly refuse: () => void
  timer: NodeJS.Timeout | undefined
  done: boolean
}

/** A counter of places with a bounded, timed FIFO queue. */
export class AdmissionGate {
  readonly #maxInFlight: number
  readonly #maxQueued: number
  readonly #queueTimeoutMs: number
  readonly #queue: Waiter[] = []
  #inFlight = 0

  constructor (options: Pick<OverloadOptions, 'maxInFlight' | 'maxQueued' | 'queueTimeoutMs'>) {
    this.#maxInFlight = options.maxInFlight
    this.#maxQueued = options.maxQueued
    this.#queueTimeoutMs = options.queueTimeoutMs
  }

  /** Requests holding a place. */
  get inFlight (): number { return this.#inFlight }
  /** Requests waiting for one. */
  get queued (): number { return this.#queue.length }

  /**
   * Asks for a place: `grant` is called (at once or later) when one is given, or
   * `refuse` when the queue is full or the wait times out. Returns a function that
   * gives the place back once granted, or leaves the queue before (idempotent).
   */
  /** Takes a free place, if there is one (then {@link release} gives it back). */
  tryEnter (): boolean {
    if (this.#inFlight >= this.#maxInFlight) return false
    this.#inFlight++
    return true
  }

  /** Gives back a place taken with {@link tryEnter}: to the first waiter, or free. */
  release (): void {
    const next = this.#queue.shift()
    if (next === undefined) {
      this.#inFlight--
      return
    }
    // The place passes straight to the first waiter.
    next.done = true
    clearTimeout(next.timer)
    next.grant()
  }

  enter (grant: () => void, refuse: () => void): () => void {
    if (this.#inFlight < this.#maxInFlight) {
      this.#inFlight++
      grant()
      return this.#releaser()
    }
    if (this.#queue.length >= this.#maxQueued) {
      refuse()
      return () => {}
    }
    let release: (() => void) | undefined
    const waiter: Waiter = {
      grant: () => { release = this.#releaser(); grant() },
      refuse,
      timer: undefined,
      done: false
    }
    waiter.timer = setTimeout(() => {
      this.#leave(waiter)
      refuse()
    }, this.#queueTimeoutMs)
    this.#queue.push(waiter)
    return () => {
      if (release !== undefined) release()
      else this.#leave(waiter)
    }
  }

  #leave (waiter: Waiter): void {
    if (waiter.done) return
    waiter.done = true
    clearTimeout(waiter.timer)
    this.#queue.splice(this.#queue.indexOf(waiter), 1)
  }

  #releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.release()
    }
  }
}

/** What a refused caller is told. */
const OVERLOADED: Refusal = Object.freeze({ code: 'PAVE_PROXY_OVERLOADED', headers: Object.freeze({ 'retry-after': String(RETRY_AFTER_SECONDS) }) })

/**
 * The pipeline's last stage: every proxied request (a route with an account)
 * takes a place in an {@link AdmissionGate}, or waits for one. Last, so that
 * refused requests never take a place. The place is given back when the response
 * closes (finished, failed or abandoned, while waiting too).
 */
export function createAdmissionStage (gate: AdmissionGate): InboundStage {
  const release = (): void => { gate.release() }
  return {
    name: 'admission',
    check (request, reply) {
      if (request.routeOptions.config.account === undefined) return undefined
      const res = reply.raw
      // A free place: taken at once, nothing made per request but the close hook's slot.
      if (gate.tryEnter()) {
        onResponseClose(res, release)
        return undefined
      }
      // No free place (just checked), so a place can only be granted later, from another
      // request's release: by then the promise below exists. A full queue refuses at once.
      let answered: StageVerdict
      let resolve: ((verdict: StageVerdict) => void) | undefined
      const leave = gate.enter(() => {
        (resolve as (verdict: StageVerdict) => void)(undefined)
      }, () => {
        request.log.warn({ inFlight: gate.inFlight, queued: gate.queued }, 'at capacity: request refused')
        if (resolve !== undefined) resolve(OVERLOADED)
        else answered = OVERLOADED
      })
      onResponseClose(res, leave)
      if (answered !== undefined) return answered
      return new Promise<StageVerdict>((settle) => { resolve = settle })
    }
  }
}

/**
 * The send timeout, armed once per connection: Node's `server.timeout` sets the
 * socket's inactivity timeout on every connection (and again when a kept-alive
 * connection's next request starts); Node re-arms it on every read and every
 * partial write. One `timeout` listener on the server decides: a started response
 * whose bytes wait for a caller that reads nothing is cut, which cancels the
 * upstream request and frees its place (a silent upstream has its own timeouts);
 * an idle connection (between requests: Node's keep-alive timeout uses the same
 * socket timeout) is closed, as Node does without a listener; anything else waits.
 */
export function armSendTimeouts (server: Server, sendTimeoutMs: number): void {
  server.timeout = sendTimeoutMs
  server.on('timeout', onSocketTimeout)
}

function onSocketTimeout (socket: Socket): void {
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (res === undefined || res === null) {
    socket.destroy() // idle: what Node does when nobody listens
    return
  }
  if (res.headersSent && !res.writableFinished && socket.writableLength > 0) res.destroy()
}
