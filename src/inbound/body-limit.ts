/**
 * The inbound message check and body limit, enforced before and while streaming.
 *
 * A proxied request whose message cannot be forwarded as one unambiguous request
 * (see `request-target.ts`: HTTP version, `Host`, `Transfer-Encoding`) is refused
 * before anything is sent upstream.
 *
 * The proxy passes request bodies through as streams, which Fastify's own
 * `bodyLimit` does not count. A declared `Content-Length` above the limit is
 * refused before anything is sent upstream (Node's parser already holds a
 * declared body to its length); a chunked body is counted as it flows and the
 * upstream request is aborted when it crosses the limit.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { ProxyError } from '../errors.js'
import { messageProblem } from './request-target.js'

/** Counts bytes and fails with PAVE_PROXY_REQUEST_TOO_LARGE past `limit`. */
export class BodyLimiter extends Transform {
  #seen = 0
  readonly #limit: number
  constructor (limit: number) {
    super()
    this.#limit = limit
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#limit) callback(new ProxyError('PAVE_PROXY_REQUEST_TOO_LARGE'))
    else callback(null, chunk)
  }
}

/**
 * Applies the message check and the limit to a proxied request: an error to
 * answer with at once, or `undefined` (the body, when chunked, is then wrapped in
 * a {@link BodyLimiter}).
 */
export function limitBody (request: FastifyRequest, limit: number): ProxyError | undefined {
  const problem = messageProblem(request.raw)
  if (problem !== undefined) return new ProxyError(problem)
  const declared = request.headers['content-length']
  if (declared !== undefined) {
    return Number(declared) > limit ? new ProxyError('PAVE_PROXY_REQUEST_TOO_LARGE') : undefined
  }
  const body = request.body
  if (body instanceof Readable) {
    const limiter = new BodyLimiter(limit)
    // A caller that aborts mid-upload must abort the upstream request too.
    body.once('error', (error) => limiter.destroy(error))
    request.body = body.pipe(limiter)
  }
  return undefined
}
