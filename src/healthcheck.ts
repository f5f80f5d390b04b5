#!/usr/bin/env node
/**
 * The container health check: `GET http://127.0.0.1:$PORT/healthz`, exit 0 on a
 * 200 and 1 on anything else (another status, a refused connection, no answer
 * within {@link HEALTHCHECK_TIMEOUT_MS}). It needs only Node.js, so the image
 * needs no curl and no shell: `HEALTHCHECK CMD ["node", "/app/dist/healthcheck.js"]`.
 *
 * It reads only `PORT` (default 8080), the port the proxy in the same container
 * listens on; the proxy's `/healthz` stays open whatever the inbound allowlist.
 */
import { get } from 'node:http'

/** The longest wait for the answer. */
export const HEALTHCHECK_TIMEOUT_MS = 2_000

const port = process.env.PORT ?? '8080'

function done (healthy: boolean, reason: string): never {
  process.stdout.write(`${healthy ? 'healthy' : 'unhealthy'}: ${reason}\n`)
  process.exit(healthy ? 0 : 1)
}

get(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS) }, (response) => {
  response.resume()
  done(response.statusCode === 200, `/healthz answered ${String(response.statusCode)}`)
}).on('error', (error) => {
  done(false, error.name === 'AbortError' ? `no answer within ${HEALTHCHECK_TIMEOUT_MS} ms` : error.message)
})
