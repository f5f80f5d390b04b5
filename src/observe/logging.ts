/**
 * pino options for the proxy: JSON lines, one access line per request, and
 * redaction of every place a credential could appear, at every level.
 */
import type { LoggerOptions } from 'pino'

/** What replaces a redacted value. */
export const REDACTED = '[redacted]'

/**
 * Paths pino censors wherever they appear in a log object. The proxy never logs
 * headers or configuration; these catch any future line that would.
 */
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers["proxy-authorization"]', 'req.headers["api-token"]',
  'headers.authorization', 'headers["proxy-authorization"]', 'headers["api-token"]',
  // v2's API-Access-Token is the API key, which alone authenticates a v2 call.
  'req.headers["api-access-token"]', 'headers["api-access-token"]',
  'apiSecret', 'secret', 'token', 'config.accounts[*].apiSecret', 'accounts[*].apiSecret', 'callers[*].tokens', 'config.callers[*].tokens',
  'tracing.headers', 'config.tracing.headers',
  'password', 'limits.redis.password', 'config.limits.redis.password'
]

export function loggerOptions (level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    // Errors are logged by code and message only: a stack or an attached object could carry internals.
    serializers: { err: serializeError }
  }
}

export function serializeError (error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) }
  const code = (error as NodeJS.ErrnoException).code
  return { type: error.name, message: error.message, ...(code !== undefined ? { code } : {}) }
}

