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


type LogFn = (...args: unknown[]) => void
/** What Fastify and the proxy use of a request's logger. */
interface ChildSource {
  child: (bindings: Record<string, unknown>, options?: Record<string, unknown>) => RequestLoggerTarget
}
type RequestLoggerTarget = ChildSource & Record<'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent', LogFn> & { level: string, isLevelEnabled: (level: string) => boolean }

/**
 * A request's logger (Fastify's `request.log`), made only when the request logs
 * something. Fastify asks for a pino child per request, with the request id bound;
 * most requests never log (the access line has its own path), and making that child
 * was the largest single cost in the proxy's own profile (about 8 % of its CPU). The
 * child is made on first use, with the same bindings and options, so a line reads
 * exactly as before.
 */
export class LazyRequestLogger {
  readonly #parent: ChildSource
  readonly #bindings: Record<string, unknown>
  readonly #options: Record<string, unknown>
  #real: RequestLoggerTarget | undefined

  constructor (parent: ChildSource, bindings: Record<string, unknown>, options: Record<string, unknown>) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  #logger (): RequestLoggerTarget {
    return (this.#real ??= this.#parent.child(this.#bindings, this.#options))
  }

  get level (): string { return this.#logger().level }
  set level (level: string) { this.#logger().level = level }
  isLevelEnabled (level: string): boolean { return this.#logger().isLevelEnabled(level) }
  child (bindings: Record<string, unknown>, options?: Record<string, unknown>): RequestLoggerTarget { return this.#logger().child(bindings, options) }
  fatal (...args: unknown[]): void { this.#logger().fatal(...args) }
  error (...args: unknown[]): void { this.#logger().error(...args) }
  warn (...args: unknown[]): void { this.#logger().warn(...args) }
  info (...args: unknown[]): void { this.#logger().info(...args) }
  debug (...args: unknown[]): void { this.#logger().debug(...args) }
  trace (...args: unknown[]): void { this.#logger().trace(...args) }
  silent (...args: unknown[]): void { this.#logger().silent(...args) }
}
