/**
 * PAVE's response trailers, passed on to the caller.
 *
 * undici hands trailers to a request's handler when the response completes, just
 * before the stream it writes into is ended; the pool's per-request handler
 * (`response-deadline.ts`) gives them to {@link passTrailers} with the caller's
 * response, which adds them so they go out with the last chunk. A response without
 * trailers costs nothing here. The `Trailer` header announcing them is not passed
 * on: Node refuses to write it on a response it does not chunk (HEAD, HTTP/1.0
 * callers), and trailers need no announcement (RFC 9110 §6.6.2).
 */
import { ServerResponse } from 'node:http'

/** Trailer fields never passed back: hop-by-hop ones and message framing (RFC 9110 §6.5.1). */
const DROPPED_TRAILERS = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'host'
])

/**
 * Adds undici's raw trailers (`[name, value, …]`) to the caller's response, when it
 * is one whose head was written (not the discarded 403 of a re-sign).
 */
export function passTrailers (target: unknown, raw: readonly Buffer[]): void {
  if (!(target instanceof ServerResponse) || !target.headersSent) return
  const trailers: Array<[string, string]> = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1')
    if (DROPPED_TRAILERS.has(name.toLowerCase())) continue
    trailers.push([name, (raw[i + 1] as Buffer).toString('latin1')])
  }
  if (trailers.length > 0) target.addTrailers(trailers)
}
