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
import { Writable, type Readable } from 'node:stream'
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import type { AccountConfig } from '../config/schema.js'
import { countUpstreamResponse, type Metrics } from '../observe/metrics.js'
import { attemptAnswered, attemptEnded, type ResendReason, type Tracing } from '../observe/tracing.js'
import type { Span } from '@opentelemetry/api'
import { OFFSET_CHANGE_REMINT_MS, type Signer } from '../signing/signer.js'
import type { ClockSkew } from '../signing/clock-skew.js'
import { ProxyError, classifyUpstreamError, underlyingError, type ErrorCode } from '../errors.js'
import type { BodyRecorder } from './body-recorder.js'
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
  /** This account's child of the upstream latency histogram. */
  readonly latency: { observe: (seconds: number) => void }
  readonly clockSkew: ClockSkew | undefined
  readonly retries: number
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

const noWrites = (): Writable => new Writable({ write: (_chunk, _encoding, callback) => { callback() } })

export function forward (context: ForwardContext, request: ForwardRequest): void {
  const { raw, res } = request
  const method = raw.method as Dispatcher.HttpMethod
  const headers = upstreamHeaders(raw.headers, context.host, request.id, context.propagateTrace)
  const hasBody = request.body !== null
  // PAVE's v2 endpoints authenticate with `API-Access-Token: <API key>` instead of the v1 headers.
  const v2 = request.path.startsWith('/v2/')
  // A caller who goes away cancels the upstream request. undici accepts any event emitter
  // as the abort signal: the response itself serves, which spares an AbortController per request.
  onResponseClose(res, cancelOnCallerGone)

  let attempt = 0
  let resigned = false
  let replayBody: Buffer | null = null
  let sentAt = 0
  let signedOffset = 0
  let sent = 0 // attempts so far
  let resendReason: ResendReason | undefined

  const dispatch = (body: Readable | Buffer | null): void => {
    if (callerGone(res)) return // gone while a retry or a re-sign was pending
    const signed = context.signer.sign(context.account())
    headers['api-key'] = signed['api-key']
    headers['api-timestamp'] = signed['api-timestamp']
    headers['api-token'] = signed['api-token']
    if (v2) headers['api-access-token'] = signed['api-key']
    signedOffset = context.clockSkew?.offsetMs ?? 0
    sentAt = context.clockSkew !== undefined ? context.clockSkew.now() : Date.now()
    const span = request.span !== undefined
      ? (context.tracing as Tracing).attempt(request.span, method, sent, resendReason, context.propagateTrace ? headers : undefined)
      : undefined
    sent++
    let replay = false // set when a 403 is to be re-signed and sent again
    context.dispatcher.stream({
      origin: context.origin,
      path: request.path,
      method,
      headers,
      body,
      signal: res,
      opaque: res // the pool's handler adds PAVE's trailers to it (response-trailers.ts)
    }, ({ statusCode, headers: answer }) => {
      const receivedAt = context.clockSkew !== undefined ? context.clockSkew.now() : Date.now()
      context.latency.observe((receivedAt - sentAt) / 1000)
      if (span !== undefined) attemptAnswered(span, statusCode)
      if (statusCode === 429 && context.onUpstreamRateLimited !== undefined) context.onUpstreamRateLimited(answer['retry-after'])
      if (context.clockSkew !== undefined) {
        const refused = statusCode === 403
        context.clockSkew.observe(answer.date as string | undefined, sentAt, receivedAt, refused)
        if (refused && !resigned && Math.abs(context.clockSkew.offsetMs - signedOffset) > OFFSET_CHANGE_REMINT_MS) {
          const body = replayableBody(request)
          if (body !== undefined) {
            replay = true
            replayBody = body
            return noWrites() // the 403 is drained, then the request is sent again
          }
        }
      }
      if (statusCode < 100 || statusCode > 599) throw new ProxyError('PAVE_PROXY_UPSTREAM_BAD_RESPONSE')
      countUpstreamResponse(context.metrics, context.accountName, statusCode)
      res.writeHead(statusCode, responseHeaders(answer, request.id, raw.complete))
      return res
    }, (error) => {
      if (span !== undefined) attemptEnded(span, error)
      if (error === null) {
        if (replay) {
          resigned = true
          resendReason = 'resign'
          context.metrics.resigned.inc({ account: context.accountName })
          request.log.info({ offsetMs: context.clockSkew?.offsetMs }, 'PAVE refused a token signed before the clock offset moved: re-signing once')
          dispatch(replayBody)
        }
        return
      }
      if (callerGone(res)) return // nobody to answer
      const code = (error as NodeJS.ErrnoException).code ?? ''
      if (!hasBody && attempt < context.retries && RETRYABLE_METHODS.has(method) && CONNECT_FAILURE_CODES.has(code)) {
        context.metrics.retries.inc({ account: context.accountName })
        const delay = Math.round(RETRY_BASE_DELAY_MS * 2 ** attempt * (0.5 + Math.random()))
        attempt++
        resendReason = 'connect'
        setTimeout(() => dispatch(null), delay)
        return
      }
      fail(request, error, classifyForwardError(error))
    })
  }
  dispatch(request.body)
}

const kCallerGone = Symbol('pave-proxy.callerGone')
type ForwardedResponse = ServerResponse & { [kCallerGone]?: boolean }

function cancelOnCallerGone (res: ServerResponse): void {
  if (res.writableFinished) return
  ;(res as ForwardedResponse)[kCallerGone] = true
  res.emit('abort')
}

function callerGone (res: ServerResponse): boolean {
  return (res as ForwardedResponse)[kCallerGone] === true
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
  /* c8 ignore start -- undici destroys the response it streams into when a body fails, which
     marks the caller gone first; this only guards against a future change of that order */
  if (res.headersSent) {
    res.destroy()
    return
  }
  /* c8 ignore stop */
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
