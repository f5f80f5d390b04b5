/**
 * `startPaveMock(options)`: a local stand-in for the PAVE API on a real socket.
 *
 * Every request is recorded, then faults (if any are configured) apply, then the
 * signature is checked the way PAVE documents it (403 with PAVE's body on any
 * failure; on a `/v2/` path, `API-Access-Token` must hold a known API key instead),
 * then the request reaches the in-memory sessions, callbacks, hotspots and v2 resend.
 */
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import type { LoggerOptions } from 'pino'
import { DEMO_ACCOUNT, loadAccountsFile, validateAccounts, type MockAccount } from './accounts.js'
import { FaultPlan, type FaultRule } from './faults.js'
import { registerRoutes } from './routes.js'
import { MockStore, type SessionStatus } from './store.js'
import { DEFAULT_TIMESTAMP_FORMAT, TIMESTAMP_FORMATS, type TimestampFormat } from '../signing/pave-token.js'
import { FORBIDDEN_BODY, verifyAccessToken, verifyRequest, type RejectReason } from './verify.js'

export { DEMO_ACCOUNT, MockAccountsError, type MockAccount } from './accounts.js'
export { parseFaultSpec, type FaultRule, type FaultStage } from './faults.js'
export type { SessionStatus } from './store.js'
export { FORBIDDEN_BODY, type RejectReason } from './verify.js'
export { TIMESTAMP_FORMATS, type TimestampFormat } from '../signing/pave-token.js'

export const DEFAULT_MOCK_HOST = '127.0.0.1'
/** Port 0: the system picks a free one; read it from `mock.port` or `mock.url`. */
export const DEFAULT_MOCK_PORT = 0
/** How long PAVE accepts a token after (or before) its timestamp. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 300
/** Largest request body the mock reads. */
export const MOCK_BODY_LIMIT = 52_428_800
/** Paths pino censors in the mock's own log lines. */
const REDACT_PATHS = ['req.headers["api-token"]', 'req.headers["api-access-token"]', 'req.headers.authorization', 'secret', '*.secret']

export interface PaveMockOptions {
  /** Listen address. Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Listen port. Default 0 (a free port). */
  readonly port?: number | undefined
  /** Accounts known to the mock. Default: the demo account ({@link DEMO_ACCOUNT}) when no `accountsFile` either. */
  readonly accounts?: readonly MockAccount[] | undefined
  /** A YAML or JSON file of more accounts (see `accounts.ts`). Default none. */
  readonly accountsFile?: string | undefined
  /** How far `API-Timestamp` may be from the mock's clock, either way, in seconds. Default 300. */
  readonly tokenLifetimeSeconds?: number | undefined
  /** Runs the mock's clock (signature check, `Date` header, times in bodies) this far ahead (+) or behind (−) real time. Default 0. */
  readonly clockOffsetMs?: number | undefined
  /**
   * The forms of `API-Timestamp` accepted (see `TIMESTAMP_FORMATS`); a request signed
   * with another form is refused like a malformed one. Default `['iso-seconds']`,
   * the written contract.
   */
  readonly timestampFormats?: readonly TimestampFormat[] | undefined
  /** Faults to inject, first match wins. Default none. */
  readonly faults?: readonly FaultRule[] | undefined
  /** `false` for no logs (the default), pino options, or a pino logger of the caller's. */
  readonly logger?: false | LoggerOptions | FastifyBaseLogger | undefined
}

/** One request as the mock received it. */
export interface MockRequest {
  readonly method: string
  /** The request target as received, query included. */
  readonly url: string
  /** The path, without the query. */
  readonly path: string
  readonly headers: IncomingHttpHeaders
  /** Header names and values as they came on the wire, in order. */
  readonly rawHeaders: readonly string[]
  /** The parsed JSON body, once read; `undefined` for none (or when refused before reading it). */
  body: unknown
  /** The account whose signature verified, if one did. */
  username: string | undefined
  /** Why the signature check refused the request, if it did. */
  rejected: RejectReason | undefined
  /** The fault applied to it, if any. */
  readonly fault: FaultRule | undefined
}

export interface PaveMock {
  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly accounts: readonly MockAccount[]
  /** The forms of `API-Timestamp` it accepts. */
  readonly timestampFormats: readonly TimestampFormat[]
  /** Every request received, oldest first. Clear it with `reset()` (or `requests.length = 0`). */
  readonly requests: MockRequest[]
  /** The underlying Fastify instance. */
  readonly app: FastifyInstance
  /** The mock's clock, epoch ms (real time plus the clock offset). */
  now: () => number
  /** Moves the mock's clock relative to real time. */
  setClockOffsetMs: (offsetMs: number) => void
  /** Replaces the fault rules (and restarts their `times` counts). */
  setFaults: (rules: readonly FaultRule[]) => void
  /**
   * Moves a session along as the user's phone would: `IN_PROGRESS` (started: no
   * longer updatable or deletable) or `COMPLETE` (photos and results appear).
   * `false` when no account has that session.
   */
  setSessionStatus: (sessionKey: string, status: SessionStatus) => boolean
  /** Forgets every session, callback and recorded request; keeps accounts, faults and clock. */
  reset: () => void
  /** Stops listening and drops every connection, hung ones included. */
  close: () => Promise<void>
}

/** A non-empty list of known timestamp forms, or a RangeError naming the unknown one. */
export function validateTimestampFormats (formats: readonly string[]): readonly TimestampFormat[] {
  if (formats.length === 0) throw new RangeError(`timestampFormats: name at least one of ${TIMESTAMP_FORMATS.join(', ')}`)
  for (const format of formats) {
    if (!(TIMESTAMP_FORMATS as readonly string[]).includes(format)) throw new RangeError(`timestampFormats: unknown form "${format}" (known: ${TIMESTAMP_FORMATS.join(', ')})`)
  }
  return Object.freeze([...formats]) as readonly TimestampFormat[]
}

/** `http://host:port`, with brackets around an IPv6 address. */
export function baseUrl (host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

export async function startPaveMock (options: PaveMockOptions = {}): Promise<PaveMock> {
  const host = options.host ?? DEFAULT_MOCK_HOST
  const lifetimeMs = (options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS) * 1000
  const timestampFormats = validateTimestampFormats(options.timestampFormats ?? [DEFAULT_TIMESTAMP_FORMAT])
  const given = [...(options.accounts ?? []), ...(options.accountsFile !== undefined ? loadAccountsFile(options.accountsFile) : [])]
  const accounts = validateAccounts(given.length > 0 ? given : [DEMO_ACCOUNT])
  const byKey = new Map(accounts.map((a) => [a.apiKey, a]))
  let clockOffsetMs = options.clockOffsetMs ?? 0
  const now = (): number => Date.now() + clockOffsetMs
  const faults = new FaultPlan(options.faults)
  const store = new MockStore()
  const requests: MockRequest[] = []
  const records = new WeakMap<FastifyRequest, MockRequest>()
  const accountOf = new WeakMap<FastifyRequest, MockAccount>()
  const closing = new AbortController()

  const app = Fastify({
    ...loggerSetting(options.logger),
    bodyLimit: MOCK_BODY_LIMIT,
    forceCloseConnections: true
  })

  // Bodies are JSON whatever the content type says; an empty body is no body.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string
    if (text.trim() === '') {
      done(null, undefined)
      return
    }
    try {
      done(null, JSON.parse(text))
    } catch {
      done(Object.assign(new Error('Invalid JSON body.'), { statusCode: 400 }), undefined)
    }
  })

  app.addHook('onRequest', async (request, reply) => {
    const url = request.raw.url as string
    const path = url.split('?', 1)[0] as string
    const fault = faults.take(request.method, path)
    const record: MockRequest = {
      method: request.method,
      url,
      path,
      headers: request.headers,
      rawHeaders: request.raw.rawHeaders,
      body: undefined,
      username: undefined,
      rejected: undefined,
      fault
    }
    requests.push(record)
    records.set(request, record)

    if (fault !== undefined) {
      request.log.info({ fault: describeFault(fault) }, 'injecting a fault')
      if (fault.latencyMs !== undefined && fault.latencyMs > 0) {
        await sleep(fault.latencyMs, undefined, { signal: closing.signal }).catch(() => {})
        if (closing.signal.aborted) return reply.hijack()
      }
      if (fault.reset === 'before-headers') {
        reply.hijack()
        request.raw.socket.resetAndDestroy()
        return reply
      }
      if (fault.hang === 'before-headers') return reply.hijack()
      if (fault.status !== undefined) {
        return reply.code(fault.status).send({ message: STATUS_CODES[fault.status] ?? 'Injected fault' })
      }
    }

    const verdict = path.startsWith('/v2/')
      ? verifyAccessToken(request.headers, byKey)
      : verifyRequest(request.headers, byKey, now(), lifetimeMs, timestampFormats)
    if (!verdict.ok) {
      record.rejected = verdict.reason
      request.log.info({ reason: verdict.reason, username: verdict.account?.username }, 'refused a request: signature check failed')
      return reply.code(403).type('application/json; charset=utf-8').send(FORBIDDEN_BODY)
    }
    record.username = verdict.account.username
    accountOf.set(request, verdict.account)
  })

  app.addHook('preHandler', async (request) => {
    (records.get(request) as MockRequest).body = request.body
  })

  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header('date', new Date(now()).toUTCString())
    const fault = records.get(request)?.fault
    if (fault?.reset !== 'mid-body' && fault?.hang !== 'mid-body') return payload
    return truncated(Buffer.from(payload as string), request, reply, fault.reset === 'mid-body')
  })

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    /* c8 ignore next 4 */ // only a bug in the mock itself gets here without a 4xx status
    if (error.statusCode === undefined || error.statusCode >= 500) {
      request.log.error({ err: error }, 'pave-mock failed')
      return reply.code(500).send({ message: 'Server Error' })
    }
    return reply.code(error.statusCode).send({ message: error.message })
  })

  app.setNotFoundHandler(async (request, reply) => {
    return reply.code(404).send({ message: `The route ${(records.get(request) as MockRequest).path.replace(/^\//, '')} could not be found.` })
  })

  registerRoutes(app, {
    stateOf: (request) => store.forKey((accountOf.get(request) as MockAccount).apiKey),
    now
  })

  await app.listen({ host, port: options.port ?? DEFAULT_MOCK_PORT })
  const port = (app.server.address() as AddressInfo).port

  return {
    url: baseUrl(host, port),
    host,
    port,
    accounts,
    timestampFormats,
    requests,
    app,
    now,
    setClockOffsetMs: (offsetMs) => { clockOffsetMs = offsetMs },
    setFaults: (rules) => { faults.set(rules) },
    setSessionStatus: (sessionKey, status) => store.setSessionStatus(sessionKey, status, now()),
    reset: () => {
      store.clear()
      requests.length = 0
    },
    close: async () => {
      closing.abort()
      await app.close()
    }
  }
}

function loggerSetting (logger: PaveMockOptions['logger']): { logger: boolean | LoggerOptions } | { loggerInstance: FastifyBaseLogger } {
  if (logger === undefined || logger === false) return { logger: false }
  if (typeof (logger as FastifyBaseLogger).child === 'function') return { loggerInstance: logger as FastifyBaseLogger }
  const options = logger as LoggerOptions
  return { logger: { ...options, redact: { paths: REDACT_PATHS, censor: '[redacted]' } } }
}

/** A fault as a short text for the log (a RegExp path as its source). */
function describeFault (fault: FaultRule): Record<string, unknown> {
  return { ...fault, path: String(fault.path) }
}

/**
 * The response with its full `content-length` but only half of its body, then a
 * reset (RST) of the connection, or silence until the client or `close()` ends it.
 */
function truncated (body: Buffer, request: FastifyRequest, reply: { header: (name: string, value: number) => unknown }, reset: boolean): Readable {
  reply.header('content-length', body.length)
  let sent = false
  return new Readable({
    read () {
      if (sent) return
      sent = true
      this.push(body.subarray(0, Math.floor(body.length / 2)))
      // Let the half reach the client before the connection is torn down.
      if (reset) setTimeout(() => request.raw.socket.resetAndDestroy(), 50)
    }
  })
}
