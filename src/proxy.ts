/**
 * One @fastify/http-proxy registration per account: the account's prefix is
 * removed, caller-sent PAVE credentials are dropped, the signer's headers are
 * added, and the request is streamed to the upstream over the shared pool; the
 * answer is streamed back as PAVE sent it.
 *
 * Two deliberate second attempts, never more than one of each:
 * - a bodyless idempotent request whose connection failed before any byte was
 *   sent is retried (bounded, exponential backoff with jitter);
 * - a request PAVE refused with 403 is re-signed and sent once more when the
 *   learned clock offset moved since it was signed (its body, when it had one,
 *   was small enough to be kept while it streamed).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { Dispatcher } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { AccountConfig, Config } from './config-schema.js'
import type { AccountTable } from './accounts.js'
import type { Metrics } from './metrics.js'
import { OFFSET_CHANGE_REMINT_MS, type Signer } from './signing/signer.js'
import type { ClockSkew } from './signing/clock-skew.js'
import { PAVE_HEADER_NAMES } from './signing/pave-token.js'
import { ProxyError, classifyUpstreamError } from './errors.js'
import { limitBody } from './body-limit.js'
import { BodyRecorder } from './body-recorder.js'
import { sendError } from './reply-error.js'

/** Methods forwarded to PAVE. CONNECT and TRACE never are. */
export const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** Caller headers never forwarded: PAVE's own credentials and hop-by-hop headers. */
const DROPPED_REQUEST_HEADERS = [...PAVE_HEADER_NAMES, 'proxy-authorization', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'upgrade']

/** Methods that may be retried after a connection failure (when they carry no body). */
const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE'])
/** Failures that happen before any byte of the request was sent. */
const CONNECT_FAILURE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])
/** First retry after about this long (±50 % jitter), doubling each time. */
export const RETRY_BASE_DELAY_MS = 100
/** Bodies up to this size are kept while they stream, so a 403 can be re-signed and replayed. */
export const RESIGN_BODY_LIMIT = 64 * 1024

export interface ProxyRoutesOptions {
  readonly config: Config
  readonly accounts: AccountTable
  readonly signer: Signer
  readonly dispatcher: Dispatcher
  readonly metrics: Metrics
  /** Undefined when clock-skew correction is off. */
  readonly clockSkew: ClockSkew | undefined
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Name of the account a proxied route signs for. */
    account?: string
  }
}

interface Exchange {
  /** Local time the request was handed to the pool. */
  sentAt: number
  /** Clock offset the request was signed with. */
  signedOffset: number
  /** The body as it streamed, when small enough to replay. */
  recorder: BodyRecorder | undefined
  resigned: boolean
}

const kExchange = Symbol('pave-proxy.exchange')
type ProxiedRequest = FastifyRequest & { [kExchange]?: Exchange }

/** Registers one proxy route set per account. */
export async function proxyRoutes (app: FastifyInstance, options: ProxyRoutesOptions): Promise<void> {
  const { config, signer, dispatcher, metrics, clockSkew, accounts } = options
  const now = clockSkew !== undefined ? () => clockSkew.now() : Date.now

  for (const { name, prefix } of accounts.all()) {
    const currentAccount = (): AccountConfig => {
      const account = accounts.get(name)
      /* c8 ignore next -- reloads never remove an account (they are refused instead) */
      if (account === undefined) throw new ProxyError('PAVE_PROXY_ROUTE_NOT_FOUND')
      return account
    }

    const replyOptions = {
      rewriteRequestHeaders: (anyRequest: unknown, headers: IncomingHttpHeaders) => {
        const request = anyRequest as ProxiedRequest
        for (const header of DROPPED_REQUEST_HEADERS) delete headers[header]
        const account = currentAccount()
        const signedOffset = clockSkew?.offsetMs ?? 0
        const signed = signer.sign(account)
        headers['api-key'] = signed['api-key']
        headers['api-timestamp'] = signed['api-timestamp']
        headers['api-token'] = signed['api-token']
        headers['x-request-id'] = request.id
        const exchange = request[kExchange] as Exchange
        exchange.sentAt = now()
        exchange.signedOffset = signedOffset
        return headers
      },
      rewriteHeaders: (headers: IncomingHttpHeaders, anyRequest?: unknown) => {
        if (anyRequest !== undefined) headers['x-request-id'] = (anyRequest as FastifyRequest).id
        return headers
      },
      onResponse: (anyRequest: unknown, anyReply: unknown, res: { statusCode: number, headers: IncomingHttpHeaders, stream: Readable }) => {
        const request = anyRequest as ProxiedRequest
        const reply = anyReply as FastifyReply
        const exchange = request[kExchange] as Exchange
        const receivedAt = now()
        metrics.upstreamDuration.observe({ account: name }, (receivedAt - exchange.sentAt) / 1000)
        if (clockSkew !== undefined) {
          const refused = res.statusCode === 403
          clockSkew.observe(res.headers.date, exchange.sentAt, receivedAt, refused)
          if (refused && !exchange.resigned && Math.abs(clockSkew.offsetMs - exchange.signedOffset) > OFFSET_CHANGE_REMINT_MS) {
            const body = replayableBody(request, exchange)
            if (body !== false) {
              resign(request, reply, res, exchange, body)
              return
            }
          }
        }
        void reply.send(res.stream)
      },
      onError: (anyReply: unknown, { error }: { error: Error }) => {
        // reply-from types its reply for HTTP/2 too; this server is HTTP/1 only.
        const reply = anyReply as FastifyReply
        const code = classifyUpstreamError(error)
        reply.request.log.warn({ code, cause: describeCause(error) }, 'upstream request failed')
        sendError(reply, code)
      },
      // Deliberate retries only (reply-from would otherwise retry GETs on 503 by default).
      retryDelay: ({ err, req, attempt }: { err: Error | null, req: { method: string, headers: IncomingHttpHeaders }, attempt: number }) => {
        if (err === null || attempt >= config.upstream.retries) return null
        if (!RETRYABLE_METHODS.has(req.method) || hasBody(req.headers)) return null
        if (!CONNECT_FAILURE_CODES.has((err as NodeJS.ErrnoException).code ?? '')) return null
        metrics.retries.inc({ account: name })
        return Math.round(RETRY_BASE_DELAY_MS * 2 ** attempt * (0.5 + Math.random()))
      }
    }

    /** Sends the request again, signed with the corrected clock. */
    const resign = (request: ProxiedRequest, reply: FastifyReply, res: { headers: IncomingHttpHeaders, stream: Readable }, exchange: Exchange, body: Buffer | undefined): void => {
      res.stream.resume() // drain the 403 so its connection can be reused
      for (const header of Object.keys(res.headers)) reply.removeHeader(header)
      exchange.resigned = true
      metrics.resigned.inc({ account: name })
      request.log.info({ offsetMs: clockSkew?.offsetMs }, 'PAVE refused a token signed before the clock offset moved: re-signing once')
      const path = upstreamPath(request.raw.url ?? '/', prefix)
      const fromOptions = body === undefined
        ? replyOptions
        : { ...replyOptions, body, contentType: request.headers['content-type'] ?? 'application/octet-stream' }
      void reply.from(path, fromOptions as unknown as Parameters<FastifyReply['from']>[1])
    }

    const proxyOptions: FastifyHttpProxyOptions = {
      upstream: config.upstream.url,
      prefix: prefix === '/' ? undefined : prefix,
      rewritePrefix: prefix === '/' ? '/' : '',
      httpMethods: PROXIED_METHODS,
      config: { account: name },
      undici: dispatcher,
      disableRequestLogging: true,
      internalRewriteLocationHeader: false,
      preHandler: (anyRequest: unknown, _reply: unknown, done: (error?: Error) => void) => {
        const request = anyRequest as ProxiedRequest
        const refused = limitBody(request, config.bodyLimit)
        request[kExchange] = { sentAt: 0, signedOffset: 0, recorder: clockSkew !== undefined ? recordSmallBody(request) : undefined, resigned: false }
        done(refused)
      },
      replyOptions: replyOptions as unknown as FastifyHttpProxyOptions['replyOptions']
    }
    await app.register(httpProxy, proxyOptions)
  }
}

/** Keeps a small declared body while it streams, so a 403 can be replayed. */
function recordSmallBody (request: ProxiedRequest): BodyRecorder | undefined {
  const length = Number(request.headers['content-length'] ?? 0)
  const body = request.body as Readable | undefined
  if (length === 0 || length > RESIGN_BODY_LIMIT || body === undefined || typeof body.pipe !== 'function') return undefined
  const recorder = new BodyRecorder()
  body.once('error', (error) => recorder.destroy(error))
  request.body = body.pipe(recorder)
  return recorder
}

/** `undefined` for a bodyless request, the kept bytes, or `false` when the body cannot be replayed. */
function replayableBody (request: FastifyRequest, exchange: Exchange): Buffer | undefined | false {
  if (!hasBody(request.headers)) return undefined
  const kept = exchange.recorder?.complete(Number(request.headers['content-length']))
  return kept ?? false
}

function hasBody (headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
}

/** The upstream path of a proxied request: its own path, without the account prefix or the query. */
export function upstreamPath (url: string, prefix: string): string {
  const queryAt = url.indexOf('?')
  const path = queryAt === -1 ? url : url.slice(0, queryAt)
  if (prefix === '/') return path
  const rest = path.slice(prefix.length)
  return rest === '' ? '/' : rest
}

/** The innermost error code of a failure, for the log line (no message: it could name internal addresses). */
function describeCause (error: unknown): string | undefined {
  let code: string | undefined
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    code = (current as NodeJS.ErrnoException).code ?? code
  }
  return code
}
