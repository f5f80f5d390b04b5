/**
 * One @fastify/http-proxy registration per account: the account's prefix is
 * removed, caller-sent PAVE credentials are dropped, the signer's headers are
 * added, and the request is streamed to the upstream over the shared pool; the
 * answer is streamed back as PAVE sent it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { Dispatcher } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import type { AccountConfig, Config } from './config-schema.js'
import type { Signer } from './signing/signer.js'
import { PAVE_HEADER_NAMES } from './signing/pave-token.js'
import { ProxyError, classifyUpstreamError } from './errors.js'
import { limitBody } from './body-limit.js'
import { sendError } from './reply-error.js'

/** Methods forwarded to PAVE. CONNECT and TRACE never are. */
export const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** Caller headers never forwarded: PAVE's own credentials and proxy-hop credentials. */
const DROPPED_REQUEST_HEADERS = [...PAVE_HEADER_NAMES, 'proxy-authorization', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'upgrade']

export interface ProxyRoutesOptions {
  readonly config: Config
  readonly accounts: () => readonly AccountConfig[]
  readonly signer: Signer
  readonly dispatcher: Dispatcher
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Name of the account a proxied route signs for. */
    account?: string
  }
}

/** Registers one proxy route set per account. */
export async function proxyRoutes (app: FastifyInstance, options: ProxyRoutesOptions): Promise<void> {
  const { config, signer, dispatcher } = options
  const bodyLimit = config.bodyLimit

  for (const { name, prefix } of options.accounts()) {
    // The account object is looked up per request, so a reload swaps credentials
    // atomically: a request is signed entirely with the old or entirely with the new.
    const currentAccount = (): AccountConfig => {
      const account = options.accounts().find((a) => a.name === name)
      /* c8 ignore next -- reloads never remove an account while its routes exist (they restart instead) */
      if (account === undefined) throw new ProxyError('PAVE_PROXY_ROUTE_NOT_FOUND')
      return account
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
      preHandler: (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
        done(limitBody(request, bodyLimit))
      },
      replyOptions: {
        rewriteRequestHeaders: (request: { id: string }, headers: IncomingHttpHeaders) => {
          for (const header of DROPPED_REQUEST_HEADERS) delete headers[header]
          const signed = signer.sign(currentAccount())
          headers['api-key'] = signed['api-key']
          headers['api-timestamp'] = signed['api-timestamp']
          headers['api-token'] = signed['api-token']
          headers['x-request-id'] = request.id
          return headers
        },
        rewriteHeaders: (headers: IncomingHttpHeaders, request?: { id: string }) => {
          if (request !== undefined) headers['x-request-id'] = request.id
          return headers
        },
        onError: (anyReply, { error }) => {
          // reply-from types its reply for HTTP/2 too; this server is HTTP/1 only.
          const reply = anyReply as unknown as FastifyReply
          const code = classifyUpstreamError(error)
          reply.request.log.warn({ code, cause: describeCause(error) }, 'upstream request failed')
          sendError(reply, code)
        },
        // No automatic retries: reply-from would otherwise retry GETs on 503 by default.
        retryDelay: () => null
      }
    }
    await app.register(httpProxy, proxyOptions)
  }
}

/** The innermost error code of a failure, for the log line (no message: it could name internal addresses). */
function describeCause (error: unknown): string | undefined {
  let code: string | undefined
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    code = (current as NodeJS.ErrnoException).code ?? code
  }
  return code
}
