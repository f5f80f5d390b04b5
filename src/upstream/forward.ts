/**
 * Forwarding one request to PAVE and streaming the answer back, on undici's
 * `stream()` API: the caller's response is the writable undici streams into, so
 * the body flows socket to socket with backpressure and no copy in between.
 *
 * Headers: the caller's are copied once, without hop-by-hop headers, without the
 * headers its `Connection` names, and without anything under PAVE's credential
 * names; then the signer's three headers (and, on a `/v2/` path, `API-Access-Token`
 * with the account's API key), the upstream's `Host` and the request id are set. PAVE's answer keeps its status, headers (hop-by-hop ones removed) and
 * trailers (added by the pool's handler, see `response-trailers.ts`).
 *
 * Two deliberate second attempts, never more than one of each:
 * - a bodyless idempotent request whose connection failed before any byte was
 *   sent is retried (bounded, exponential backoff with jitter);
 * - a request PAVE refused with 403 is re-signed and sent once more when the
 *   learned clock offset moved since it was signed (its body, when it had one,
 *   was small enough to be kept while it streamed).
 *
 * W3C trace context (`traceparent`, `tracestate`, `baggage`) is not forwarded unless
 * `tracing.propagateUpstream` is set; then a traced request carries its attempt's
 * client span (each attempt is one), an untraced one the caller's headers as they came.
 */
import type { Readable } from 'node:stream'
import { IncomingMessage, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { util, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import type { AccountConfig } from '../config/schema.js'
import { countUpstreamResponse, type Metrics, type StatusCounts } from '../observe/metrics.js'
import { attemptAnswered, attemptEnded, type ResendReason, type Tracing } from '../observe/tracing.js'
import type { Span } from '@opentelemetry/api'
import { OFFSET_CHANGE_REMINT_MS, type Signer } from '../signing/signer.js'
import type { ClockSkew } from '../signing/clock-skew.js'
import { ProxyError, classifyUpstreamError, underlyingError, type ErrorCode } from '../errors.js'
import type { BodyRecorder } from './body-recorder.js'
import { passTrailers } from './response-trailers.js'
import { writeRawError } from '../reply-error.js'
import { onResponseClose } from '../response-close.js'

/**
 * Request headers never forwarded: hop-by-hop, `Expect` (answered for this hop: Node sends the
 * caller its `100 Continue`, and undici refuses to send the header), proxy credentials, PAVE's
 * credential names (v1 and v2), and ours to set.
 */
const ALWAYS_DROPPED = [
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect',
  'proxy-authorization', 'host', 'api-key', 'api-timestamp', 'api-token', 'api-access-token', 'x-request-id'
]
/** W3C trace context: the caller's business, not PAVE's, unless `tracing.propagateUpstream`. */
export const TRACE_CONTEXT_HEADERS = ['traceparent', 'tracestate', 'baggage'] as const
const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([...ALWAYS_DROPPED, ...TRACE_CONTEXT_HEADERS])
const DROPPED_REQUEST_HEADERS_PROPAGATING: ReadonlySet<string> = new Set(ALWAYS_DROPPED)
/** Response headers never passed back: hop-by-hop. */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/** More interim (1xx) responses than this to one request is not an answer. */
export const MAX_INTERIM_RESPONSES = 16

const { parseHeaders } = util

/** Methods that may be retried after a connection failure (when they carry no body). */
const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE'])
/** Failures that happen before any byte of the request was sent. */
const CONNECT_FAILURE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])
/** First retry after about this long (±50 % jitter), doubling each time. */
export const RETRY_BASE_DELAY_MS = 100

/** Everything a forward needs that does not change per request. */
export interface ForwardContext {
  readonly accountName: string
  readonly origin: string
  readonly host: string
  readonly dispatcher: Dispatcher
  readonly signer: Signer
  readonly metrics: Metrics
  /** This account's counts of PAVE's answers by status (`pave_proxy_upstream_responses_total`). */
  readonly statusCounts: StatusCounts
  /** This account's cell of the upstream latency histogram. */
  readonly latency: { observe: (seconds: number) => void }
  readonly clockSkew: ClockSkew | undefined
  readonly retries: number
  /** `upstream.timeoutMs`: the longest wait for the final response once the request is sent, interim responses or not. */
  readonly timeoutMs: number
  readonly account: () => AccountConfig
  /** Tracing, when configured. */
  readonly tracing: Tracing | undefined
  /** `tracing.propagateUpstream`: PAVE receives trace context. */
  readonly propagateTrace: boolean
  /** Told when PAVE answers 429 (with its `Retry-After`), so the account's budget can pause. Default: nothing. */
  readonly onUpstreamRateLimited?: ((retryAfter: string | string[] | undefined) => void) | undefined
}

export interface ForwardRequest {
  readonly raw: IncomingMessage
  readonly res: ServerResponse
  readonly id: string
  readonly log: FastifyBaseLogger
  /** Upstream path and query, exactly as the caller sent them (prefix removed). */
  readonly path: string
  /** The body stream to send, or null for none. */
  readonly body: Readable | null
  /** A copy of a small body, for the 403 replay. */
  readonly recorder: BodyRecorder | undefined
  /** The request's recording server span, when it is traced. */
  readonly span: Span | undefined
}

/**
 * undici's handler interface (the one its `Request` calls; see undici's
 * `lib/core/request.js`): each attempt is dispatched with the request's
 * {@link Forwarding} as its handler. Lower than `stream()`, which would add per
 * request an async resource, an end-of-stream watcher (several listeners on the
 * caller's response) and an abort listener on it; the handler needs none of them.
 */
interface DispatchHandler {
  onConnect: (abort: (error?: Error) => void) => void
  onRequestSent: () => void
  onHeaders: (statusCode: number, headers: Buffer[], resume: () => void, statusText: string) => boolean
  onData: (chunk: Buffer) => boolean
  onComplete: (trailers: Buffer[] | null) => void
  onError: (error: Error) => void
  onUpgrade: (statusCode: number, headers: Buffer[] | null, socket: unknown) => void
}

/** The reason an attempt is cut when its caller has gone (never answered: nobody is left to answer). */
class CallerGoneError extends Error {
  readonly code = 'PAVE_PROXY_CALLER_GONE'
}

const kForwarding = Symbol('pave-proxy.forwarding')
type ForwardedResponse = ServerResponse & { [kForwarding]?: Forwarding }

export function forward (context: ForwardContext, request: ForwardRequest): void {
  const forwarding = new Forwarding(context, request)
  // A caller who goes away cancels the upstream request (through the shared close hook).
  ;(request.res as ForwardedResponse)[kForwarding] = forwarding
  onResponseClose(request.res, cancelOnCallerGone)
  forwarding.dispatch(request.body)
}

function cancelOnCallerGone (res: ServerResponse): void {
  if (res.writableFinished) return
  ;(res as ForwardedResponse)[kForwarding]?.callerGone()
}

/**
 * One request's way to PAVE and back: every attempt (a connect retry, the re-signed
 * second send) is dispatched with this object as undici's handler, and PAVE's answer
 * streams from it into the caller's response, with backpressure.
 *
 * It also keeps two bounds undici's own timeouts leave open. undici restarts its
 * `headersTimeout` on every interim (1xx) response, so an upstream sending
 * `102 Processing` every few seconds would hold the request forever: after a first
 * interim response, the wait for the final one is bounded here, counted from the
 * moment the request was fully sent (past `timeoutMs`: 504). And more than
 * {@link MAX_INTERIM_RESPONSES} interim responses is not an answer (502). Either way
 * the upstream connection is closed. Until a first interim response, undici's own
 * `headersTimeout` (the pool's, set to the same `timeoutMs`, refreshed when the
 * request's last byte is sent) already is that deadline: the common request makes no timer.
 */
class Forwarding implements DispatchHandler {
  readonly #context: ForwardContext
  readonly #request: ForwardRequest
  readonly #method: Dispatcher.HttpMethod
  readonly #headers: Record<string, string | string[]>
  readonly #hasBody: boolean
  // PAVE's v2 endpoints authenticate with `API-Access-Token: <API key>` instead of the v1 headers.
  readonly #v2: boolean
  #gone = false
  #retries = 0
  #resigned = false
  #sent = 0 // attempts so far
  #resendReason: ResendReason | undefined
  // The attempt in flight:
  #abort: ((error?: Error) => void) | undefined
  #resume: (() => void) | undefined
  #span: Span | undefined
  #sentAt = 0
  #signedOffset = 0
  /** When the request was fully sent (performance.now()), for the interim deadline; NaN before. */
  #fullySentAt = Number.NaN
  #interim = 0
  #deadline: NodeJS.Timeout | undefined
  /** PAVE's answer is being written to the caller. */
  #writing = false
  /** Set when PAVE refused a token signed before the clock offset moved: its 403 is read and dropped, then the request is sent again with this body. */
  #replay: Buffer | null | undefined

  constructor (context: ForwardContext, request: ForwardRequest) {
    this.#context = context
    this.#request = request
    this.#method = request.raw.method as Dispatcher.HttpMethod
    this.#headers = upstreamHeaders(request.raw.headers, context.host, request.id, context.propagateTrace)
    this.#hasBody = request.body !== null
    this.#v2 = request.path.startsWith('/v2/')
  }

  /** The caller went away: the attempt in flight (or the next one) is cut. */
  callerGone (): void {
    this.#gone = true
    this.#abort?.(new CallerGoneError('the caller went away'))
  }

  dispatch (body: Readable | Buffer | null): void {
    if (this.#gone) return // gone while a retry or a re-sign was pending
    const context = this.#context
    const headers = this.#headers
    const signed = context.signer.sign(context.account())
    headers['api-key'] = signed['api-key']
    headers['api-timestamp'] = signed['api-timestamp']
    headers['api-token'] = signed['api-token']
    if (this.#v2) headers['api-access-token'] = signed['api-key']
    this.#signedOffset = context.clockSkew?.offsetMs ?? 0
    this.#sentAt = context.clockSkew !== undefined ? context.clockSkew.now() : Date.now()
    this.#span = this.#request.span !== undefined
      ? (context.tracing as Tracing).attempt(this.#request.span, this.#method, this.#sent, this.#resendReason, context.propagateTrace ? headers : undefined)
      : undefined
    this.#sent++
    this.#abort = undefined
    this.#fullySentAt = Number.NaN
    this.#interim = 0
    this.#replay = undefined
    context.dispatcher.dispatch({ origin: context.origin, path: this.#request.path, method: this.#method, headers, body }, this as unknown as Dispatcher.DispatchHandler)
  }

  onConnect (abort: (error?: Error) => void): void {
    if (this.#gone) {
      abort(new CallerGoneError('the caller went away'))
      return
    }
    this.#abort = abort
  }

  onRequestSent (): void {
    this.#fullySentAt = performance.now()
    // An interim answer before the request was fully sent: the deadline starts now.
    if (this.#interim > 0) {
      this.#stopDeadline()
      this.#armDeadline()
    }
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // undici fails the attempt with what is thrown here (onError).
    if (statusCode < 100) throw new ProxyError('PAVE_PROXY_UPSTREAM_BAD_RESPONSE')
    if (statusCode < 200) {
      if (++this.#interim > MAX_INTERIM_RESPONSES) {
        this.#cut(new ProxyError('PAVE_PROXY_UPSTREAM_BAD_RESPONSE'))
        return false
      }
      // undici restarts its headers timeout now: from here on, this timer keeps the deadline.
      if (this.#deadline === undefined && !Number.isNaN(this.#fullySentAt)) this.#armDeadline()
      return true
    }
    this.#stopDeadline()
    const context = this.#context
    const answer = parseHeaders(rawHeaders) as IncomingHttpHeaders
    const receivedAt = context.clockSkew !== undefined ? context.clockSkew.now() : Date.now()
    context.latency.observe((receivedAt - this.#sentAt) / 1000)
    if (this.#span !== undefined) attemptAnswered(this.#span, statusCode)
    if (statusCode === 429 && context.onUpstreamRateLimited !== undefined) context.onUpstreamRateLimited(answer['retry-after'])
    if (context.clockSkew !== undefined) {
      const refused = statusCode === 403
      context.clockSkew.observe(answer.date, this.#sentAt, receivedAt, refused)
      if (refused && !this.#resigned && Math.abs(context.clockSkew.offsetMs - this.#signedOffset) > OFFSET_CHANGE_REMINT_MS) {
        const body = replayableBody(this.#request)
        if (body !== undefined) {
          this.#replay = body
          return true // the 403 is read and dropped, then the request is sent again
        }
      }
    }
    if (statusCode > 599) throw new ProxyError('PAVE_PROXY_UPSTREAM_BAD_RESPONSE')
    countUpstreamResponse(context.statusCounts, statusCode)
    const { res, raw, id } = this.#request
    res.writeHead(statusCode, responseHeaders(answer, id, raw.complete))
    this.#writing = true
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    if (!this.#writing) return true // the dropped 403
    const res = this.#request.res
    if (res.write(chunk)) return true
    // The caller reads slower than PAVE sends: undici pauses until the response drains.
    res.once('drain', this.#resume as () => void)
    return false
  }

  onComplete (trailers: Buffer[] | null): void {
    this.#stopDeadline()
    if (this.#span !== undefined) attemptEnded(this.#span, null)
    if (this.#replay !== undefined) {
      const body = this.#replay
      const context = this.#context
      this.#resigned = true
      this.#resendReason = 'resign'
      context.metrics.resigned.inc({ account: context.accountName })
      this.#request.log.info({ offsetMs: context.clockSkew?.offsetMs }, 'PAVE refused a token signed before the clock offset moved: re-signing once')
      this.dispatch(body)
      return
    }
    const res = this.#request.res
    if (trailers !== null && trailers.length > 0) passTrailers(res, trailers)
    res.end()
  }

  onError (error: Error): void {
    this.#stopDeadline()
    if (this.#span !== undefined) attemptEnded(this.#span, error)
    const { body, res } = this.#request
    // A body that will not be sent now is stopped (the caller's socket stays open for the answer).
    if (body !== null) destroyBody(body)
    if (this.#gone) return // nobody to answer
    if (this.#writing) {
      // PAVE's answer broke off after it had begun: the caller's response is cut.
      res.destroy()
      return
    }
    const code = (error as NodeJS.ErrnoException).code ?? ''
    const context = this.#context
    if (!this.#hasBody && this.#retries < context.retries && RETRYABLE_METHODS.has(this.#method) && CONNECT_FAILURE_CODES.has(code)) {
      context.metrics.retries.inc({ account: context.accountName })
      const delay = Math.round(RETRY_BASE_DELAY_MS * 2 ** this.#retries * (0.5 + Math.random()))
      this.#retries++
      this.#resendReason = 'connect'
      setTimeout(() => { this.dispatch(null) }, delay)
      return
    }
    fail(this.#request, error, classifyForwardError(error))
  }

  /* c8 ignore next 3 -- the proxy never sends CONNECT or Upgrade upstream */
  onUpgrade (): void {
    throw new ProxyError('PAVE_PROXY_UPSTREAM_BAD_RESPONSE')
  }

  #armDeadline (): void {
    const left = this.#context.timeoutMs - (performance.now() - this.#fullySentAt)
    this.#deadline = setTimeout(() => { this.#cut(new ProxyError('PAVE_PROXY_UPSTREAM_TIMEOUT')) }, Math.max(0, left))
  }

  #stopDeadline (): void {
    if (this.#deadline === undefined) return
    clearTimeout(this.#deadline)
    this.#deadline = undefined
  }

  /** Ends the attempt with the proxy's error; undici closes the connection and calls onError. */
  #cut (error: ProxyError): void {
    this.#stopDeadline()
    this.#abort?.(error)
  }
}

/**
 * Stops a body stream that will not be sent: without an error (nobody listens for one
 * any more). The caller's request itself is marked destroyed without destroying its
 * socket (as undici does), so the proxy's error can still be written to it.
 */
export function destroyBody (body: Readable): void {
  if (body.destroyed) return
  if (body instanceof IncomingMessage) (body as { socket: unknown }).socket = null
  body.destroy()
}

/** What a refused request would be sent again with: `null` for no body, the kept bytes, or `undefined` when it cannot be. */
function replayableBody (request: ForwardRequest): Buffer | null | undefined {
  if (request.body === null) return null
  return request.recorder?.complete()
}

/** The proxy's code for a failed forward. */
export function classifyForwardError (error: Error): ErrorCode {
  const code = (error as NodeJS.ErrnoException).code
  // Node refuses to write a status or header value the upstream should not have sent.
  if (code === 'ERR_HTTP_INVALID_STATUS_CODE' || code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') return 'PAVE_PROXY_UPSTREAM_BAD_RESPONSE'
  return classifyUpstreamError(error)
}

/**
 * Answers with the proxy's error when nothing was sent yet; otherwise cuts the response.
 * The log line names the underlying error's code; a request undici refused before
 * contacting anything is the proxy's own fault, logged as an error with undici's
 * message (which names a header, never its value).
 */
function fail (request: ForwardRequest, error: Error, code: ErrorCode): void {
  const { res } = request
  const cause = underlyingError(error)
  if (code === 'PAVE_PROXY_INTERNAL') request.log.error({ code, cause: cause.code, reason: cause.message }, 'upstream request failed')
  else request.log.warn({ code, cause: cause.code }, 'upstream request failed')
  writeRawError(res, code, request.id)
}

/**
 * The caller's headers as PAVE should receive them (credentials are added per attempt);
 * trace context only with `propagateTrace`.
 */
export function upstreamHeaders (incoming: IncomingHttpHeaders, host: string, requestId: string, propagateTrace = false): Record<string, string | string[]> {
  const named = connectionNamed(incoming.connection)
  const dropped = propagateTrace ? DROPPED_REQUEST_HEADERS_PROPAGATING : DROPPED_REQUEST_HEADERS
  const headers: Record<string, string | string[]> = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || dropped.has(name) || (named !== undefined && named.has(name))) continue
    // `api_token` is `API-Token` to servers that map `-` and `_` to one name (CGI, WSGI, Rack).
    if (name.includes('_') && dropped.has(name.replaceAll('_', '-'))) continue
    headers[name] = value
  }
  headers.host = host
  headers['x-request-id'] = requestId
  return headers
}

function responseHeaders (answer: IncomingHttpHeaders, requestId: string, requestComplete: boolean): OutgoingHttpHeaders {
  const named = connectionNamed(answer.connection)
  const headers: OutgoingHttpHeaders = {}
  for (const name in answer) {
    if (DROPPED_RESPONSE_HEADERS.has(name) || (named !== undefined && named.has(name))) continue
    headers[name] = answer[name]
  }
  headers['x-request-id'] = requestId
  // A connection whose request body was not read to the end cannot be reused.
  if (!requestComplete) headers.connection = 'close'
  return headers
}

/** Header names listed in a `Connection` header (RFC 9110 §7.6.1), lowercased. */
export function connectionNamed (value: string | string[] | undefined): Set<string> | undefined {
  // The common values name nothing that is not dropped anyway: no set to build.
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined
  const names = (Array.isArray(value) ? value.join(',') : value).split(',').map((v) => v.trim().toLowerCase()).filter((v) => v !== '')
  return names.length > 0 ? new Set(names) : undefined
}
