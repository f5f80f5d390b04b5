/**
 * The Redis store: every replica spends the same budgets, decided atomically by one
 * Lua script (`redis-script.ts`) on Redis's clock. The client is ioredis.
 *
 * Redis slow or gone never holds a request: a decision waits at most `timeoutMs`;
 * nothing is queued while the connection is down (no offline queue, no command
 * retried after a reconnect). On the first failure the store turns *unavailable*
 * and stops asking Redis at all; every request is then decided by `onError`:
 * `local` (this process's own memory store), `open` (admitted) or `closed` (503).
 * A probe (`PING`, same timeout) runs in the background until Redis answers again,
 * then the store is *available* again. Each change is logged once and shows in a
 * gauge and in `/readyz`.
 *
 * A restart, a failover to a new address behind the same name (ioredis resolves
 * the name again on every reconnect) and a flushed database need nothing special:
 * reconnects back off and retry forever, ioredis re-sends the script with EVAL
 * when Redis answers NOSCRIPT, and a flushed key means a full burst.
 */
import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisLimitsConfig } from '../../config/schema.js'
import { DECIDE_SCRIPT, PAUSE_SCRIPT } from './redis-script.js'
import type { MemoryLimitStore } from './memory-store.js'
import type { Decision, LimitPlan, LimitStore } from './plan.js'

/** How often an unavailable store asks Redis whether it is back, ms. */
export const PROBE_INTERVAL_MS = 500
/** Reconnect delays: doubling from 50 ms up to this, with ±25 % jitter. */
export const MAX_RECONNECT_DELAY_MS = 2000

type ScriptClient = Redis & {
  paveLimitDecide: (...args: Array<string | number>) => Promise<number[]>
  paveLimitPause: (key: string, ms: number) => Promise<number>
}

export interface RedisStoreOptions {
  readonly config: RedisLimitsConfig & { readonly url: string }
  /** The fallback with `onError: local`, and the local copy of pauses. */
  readonly local: MemoryLimitStore
  readonly log: FastifyBaseLogger
  /** Called with `true`/`false` on every change of availability. */
  readonly onAvailability: (available: boolean) => void
}

const UNAVAILABLE: Decision = Object.freeze({ scope: 'unavailable', rule: -1, waitMs: 1000 })

/** ioredis's options for the configured store: fail fast, never queue, reconnect with backoff. */
export function redisOptions (config: RedisLimitsConfig): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: Math.max(1000, config.timeoutMs * 20),
    // RESP2: what every Redis (and Redis-compatible managed service) speaks.
    protocol: 2,
    retryStrategy: (times: number) => Math.round(Math.min(MAX_RECONNECT_DELAY_MS, 50 * 2 ** Math.min(times, 6)) * (0.75 + Math.random() / 2)),
    ...(config.password !== undefined ? { password: config.password } : {}),
    // ioredis turns TLS on for rediss: URLs; these options then apply to it too.
    ...(config.tls || config.caFile !== undefined || config.url?.startsWith('rediss:') === true ? { tls: config.caFile !== undefined ? { ca: readFileSync(config.caFile, 'utf8') } : {} } : {})
  }
}

export class RedisLimitStore implements LimitStore {
  readonly #client: ScriptClient
  readonly #local: MemoryLimitStore
  readonly #timeoutMs: number
  readonly #onError: RedisLimitsConfig['onError']
  readonly #log: FastifyBaseLogger
  readonly #onAvailability: (available: boolean) => void
  #available = false
  /** What was last logged, so each change is logged once. */
  #reported: boolean | undefined
  #probe: NodeJS.Timeout | undefined
  #probing = false
  #closed = false

  constructor (options: RedisStoreOptions) {
    const { config } = options
    this.#local = options.local
    this.#timeoutMs = config.timeoutMs
    this.#onError = config.onError
    this.#log = options.log
    this.#onAvailability = options.onAvailability
    this.#client = new Redis(config.url, redisOptions(config)) as ScriptClient
    this.#client.defineCommand('paveLimitDecide', { lua: DECIDE_SCRIPT })
    this.#client.defineCommand('paveLimitPause', { lua: PAUSE_SCRIPT, numberOfKeys: 1 })
    // ioredis reports every failed connection attempt here; availability is what matters.
    this.#client.on('error', (error: NodeJS.ErrnoException) => { this.#unavailable(error) })
    this.#client.on('close', () => { this.#unavailable(undefined) })
    this.#client.on('ready', () => { this.#check() })
  }

  decide = (plan: LimitPlan): Decision | Promise<Decision> => {
    // A pause this process has seen costs no round trip.
    const paused = this.#local.pausedMs(plan.pauseKey)
    if (paused > 0) return { scope: 'upstream', rule: -1, waitMs: paused }
    if (!this.#available) return this.#fallback(plan)
    const args: Array<string | number> = [plan.keys.length + 1, plan.pauseKey, ...plan.keys]
    for (const rule of plan.rules) args.push(rule.intervalUs, rule.limitUs)
    return new Promise<Decision>((resolve) => {
      let settled = false
      const timer = setTimeout(() => {
        settled = true
        this.#unavailable(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }))
        resolve(this.#fallback(plan))
      }, this.#timeoutMs)
      this.#client.paveLimitDecide(...args).then((reply) => {
        if (settled) return
        clearTimeout(timer)
        const answer = decision(plan, reply)
        // Another replica's pause: kept here too, so the next requests need no round trip.
        if (answer?.scope === 'upstream') this.#local.pause(plan.pauseKey, answer.waitMs)
        resolve(answer)
      }, (error: NodeJS.ErrnoException) => {
        if (settled) return
        clearTimeout(timer)
        this.#unavailable(error)
        resolve(this.#fallback(plan))
      })
    })
  }

  pause = (pauseKey: string, ms: number): boolean => {
    const began = this.#local.pause(pauseKey, ms)
    // Shared with the other replicas when Redis is there; best effort, never waited for.
    if (this.#available) this.#client.paveLimitPause(pauseKey, Math.round(ms)).catch((error: NodeJS.ErrnoException) => { this.#unavailable(error) })
    return began
  }

  state = (): Record<string, string> => ({ store: 'redis', redis: this.#available ? 'available' : 'unavailable', onError: this.#onError })

  close = async (): Promise<void> => {
    this.#closed = true
    clearInterval(this.#probe)
    this.#client.disconnect()
  }

  #fallback (plan: LimitPlan): Decision {
    if (this.#onError === 'local') return this.#local.decide(plan)
    if (this.#onError === 'open') return undefined
    return UNAVAILABLE
  }

  #unavailable (error: NodeJS.ErrnoException | undefined): void {
    if (this.#closed) return
    this.#available = false
    if (this.#reported !== false) {
      this.#reported = false
      this.#onAvailability(false)
      // The error's code only: its message may name an internal address.
      this.#log.warn({ reason: error === undefined ? 'connection closed' : error.code ?? error.name, onError: this.#onError }, `rate-limit store unavailable: limits are ${this.#onError === 'local' ? 'kept by each process alone' : this.#onError === 'open' ? 'not applied' : 'refusing requests (503)'} until Redis answers`)
    }
    if (this.#probe === undefined) {
      this.#probe = setInterval(() => { this.#check() }, PROBE_INTERVAL_MS)
      this.#probe.unref()
    }
  }

  /** One PING within the timeout: the store is available again when it answers. */
  #check (): void {
    if (this.#probing || this.#closed || this.#client.status !== 'ready') return
    this.#probing = true
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      this.#probing = false
    }, this.#timeoutMs)
    this.#client.ping().then(() => {
      if (settled) return
      clearTimeout(timer)
      this.#probing = false
      this.#becomeAvailable()
    }, () => {
      /* c8 ignore next -- a PING that fails only after its own timeout: the probe has moved on already */
      if (settled) return
      clearTimeout(timer)
      this.#probing = false
    })
  }

  // (Never after close: disconnecting rejects the probe's PING.)
  #becomeAvailable (): void {
    clearInterval(this.#probe)
    this.#probe = undefined
    this.#available = true
    if (this.#reported !== true) {
      this.#reported = true
      this.#onAvailability(true)
      this.#log.info('rate-limit store available: limits are shared through Redis')
    }
  }
}

function decision (plan: LimitPlan, reply: number[]): Decision {
  const [code, waitMs] = reply as [number, number]
  if (code === 0) return undefined
  if (code === -1) return { scope: 'upstream', rule: -1, waitMs }
  return { scope: plan.scopes[code - 1]!, rule: code - 1, waitMs }
}
