/**
 * The proxied routes: one route set per account, under its prefix. Each request
 * is checked against the body limit, handed its account, and given to the
 * forwarder, which owns the response from then on (`reply.hijack()`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { AccountConfig, Config } from './config/schema.js'
import type { AccountTable } from './config/account-table.js'
import { upstreamStatusCounts, type Metrics } from './observe/metrics.js'
import type { Signer } from './signing/signer.js'
import type { ClockSkew } from './signing/clock-skew.js'
import { ProxyError } from './errors.js'
import { limitBody } from './inbound/body-limit.js'
import { BodyRecorder } from './upstream/body-recorder.js'
import { sendError } from './reply-error.js'
import { forward, type ForwardContext } from './upstream/forward.js'
import type { Tracing } from './observe/tracing.js'
import type { Limits } from './inbound/limits/stage.js'

/** Methods forwarded to PAVE. CONNECT and TRACE never are. */
export const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'] as const

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
  /** Whether the upstream latency histogram is fed (off only in the benchmarks' price list). Default true. */
  readonly observeLatency?: boolean
  /** Undefined when tracing is off. */
  readonly tracing?: Tracing | undefined
  /** The rate limits, when any is configured (PAVE's 429s pause an account with a limit). */
  readonly limits?: Limits | undefined
}

/** The latency histogram's stand-in when it is not fed. */
const NO_LATENCY = { observe: (_seconds: number): void => {} }

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Name of the account a proxied route signs for. */
    account?: string
  }
}

/** Registers one route set per account; bodies reach the handler as unread streams. */
export async function proxyRoutes (app: FastifyInstance, options: ProxyRoutesOptions): Promise<void> {
  const { config, accounts, signer, dispatcher, metrics, clockSkew, tracing, limits } = options
  const upstream = new URL(config.upstream.url)

  // Bodies are streamed, never parsed: every content type (or none) passes through unread.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

  for (const { name, prefix } of accounts.all()) {
    const context: ForwardContext = {
      accountName: name,
      origin: upstream.origin,
      host: upstream.host,
      dispatcher,
      signer,
      metrics,
      statusCounts: upstreamStatusCounts(metrics, name),
      latency: options.observeLatency === false ? NO_LATENCY : metrics.upstreamDuration.labels(name),
      clockSkew,
      retries: config.upstream.retries,
      timeoutMs: config.upstream.timeoutMs,
      tracing,
      propagateTrace: config.tracing.propagateUpstream,
      onUpstreamRateLimited: limits?.pausesOnUpstream(name) === true ? (retryAfter) => { limits.upstreamLimited(name, retryAfter) } : undefined,
      account: (): AccountConfig => {
        const account = accounts.get(name)
        /* c8 ignore next -- reloads never remove an account (they are refused instead) */
        if (account === undefined) throw new ProxyError('PAVE_PROXY_ROUTE_NOT_FOUND')
        return account
      }
    }
    const prefixLength = prefix === '/' ? 0 : prefix.length

    const handler = (request: FastifyRequest, reply: FastifyReply): void => {
      // Fastify reads no body for GET and HEAD: one sent anyway is forwarded as sent, never dropped.
      if (request.body === undefined && carriesBody(request.headers)) request.body = request.raw
      const refused = limitBody(request, config.bodyLimit)
      if (refused !== undefined) {
        sendError(reply, refused.code)
        return
      }
      const url = request.raw.url as string
      // The prefix is removed; the rest of the target goes upstream exactly as sent.
      let path = url.slice(prefixLength)
      if (path === '' || path.charCodeAt(0) === 63 /* ? */) path = '/' + path
      let body = (request.body as Readable | undefined) ?? null
      let recorder: BodyRecorder | undefined
      if (body !== null && clockSkew !== undefined) {
        const length = Number(request.headers['content-length'])
        if (length > 0 && length <= RESIGN_BODY_LIMIT) {
          recorder = new BodyRecorder(length)
          body.once('error', (error) => recorder?.destroy(error))
          body = body.pipe(recorder)
        }
      }
      reply.hijack()
      forward(context, { raw: request.raw, res: reply.raw, id: request.id, log: request.log, path, body, recorder, span: request.traceSpan })
    }

    const routeOptions = { method: [...PROXIED_METHODS], config: { account: name }, exposeHeadRoute: false, handler }
    if (prefix === '/') {
      app.route({ ...routeOptions, url: '/*' })
    } else {
      app.route({ ...routeOptions, url: prefix })
      app.route({ ...routeOptions, url: `${prefix}/*` })
    }
  }
}

/** Whether a request's framing announces a body (RFC 9112 §6.3): any `Transfer-Encoding`, or a `Content-Length` other than 0. */
export function carriesBody (headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}
