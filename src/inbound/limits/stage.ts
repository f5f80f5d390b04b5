/**
 * The limits stage of the inbound pipeline (after identity and policy, before the
 * admission gate): a proxied request spends one unit of its caller's budget and
 * one of its account's, both or neither. Over a limit it is answered
 * `429 PAVE_PROXY_RATE_LIMITED` with `Retry-After` and the `RateLimit-Policy` and
 * `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-11; with the Redis
 * store unavailable and `onError: closed`, `503 PAVE_PROXY_LIMITS_UNAVAILABLE`.
 *
 * When PAVE itself answers 429 with `Retry-After`, the account's budget pauses for
 * that long (at most {@link MAX_UPSTREAM_PAUSE_MS}): the other callers get the
 * proxy's 429 at once instead of queueing onto PAVE. PAVE's answer passes untouched.
 *
 * Built only when some limit is configured; without one, nothing of this runs.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Config } from '../../config/schema.js'
import type { Metrics } from '../../observe/metrics.js'
import type { InboundStage, Refusal, StageVerdict } from '../pipeline.js'
import { callerLabel } from '../callers.js'
import { limitRule, retryAfterSeconds, type LimitRule } from './gcra.js'
import { MemoryLimitStore } from './memory-store.js'
import { limitKey, type Decision, type LimitPlan, type LimitScope, type LimitStore } from './plan.js'

/** Longest pause PAVE's `Retry-After` can impose on an account. */
export const MAX_UPSTREAM_PAUSE_MS = 60_000

export interface Limits {
  readonly stage: InboundStage
  /** For the forwarder: whether PAVE's 429s pause this account (it has a limit). */
  readonly pausesOnUpstream: (account: string) => boolean
  /** PAVE answered 429 for this account, with this `Retry-After` (if any). */
  readonly upstreamLimited: (account: string, retryAfter: string | string[] | undefined) => void
  /** For `/readyz`. */
  readonly state: () => Record<string, string>
  readonly close: () => Promise<void>
}

export interface LimitsOptions {
  readonly log: FastifyBaseLogger
  readonly metrics: Metrics
  /** Wall clock for `Retry-After` dates, epoch ms. Default `Date.now`. */
  readonly now?: () => number
  /** The memory store (tests give one with their own clock). */
  readonly memory?: MemoryLimitStore
}


/**
 * `undefined` when no account or caller has a limit. The Redis client (ioredis, about
 * 16 MB of a process's memory) is loaded only when the Redis store is configured.
 */
export async function createLimits (config: Config, options: LimitsOptions): Promise<Limits | undefined> {
  const accountRules = new Map<string, LimitRule>()
  for (const account of config.accounts) if (account.limit !== undefined) accountRules.set(account.name, limitRule(account.limit))
  const callerRules = new Map<string, LimitRule>()
  const callerShares = new Map<string, number>()
  for (const caller of config.callers ?? []) {
    if (caller.limit !== undefined) callerRules.set(caller.name, limitRule(caller.limit))
    if (caller.maxInFlight !== undefined) callerShares.set(caller.name, caller.maxInFlight)
  }
  if (accountRules.size === 0 && callerRules.size === 0 && callerShares.size === 0) return undefined

  const { metrics, log } = options
  const now = options.now ?? Date.now
  const prefix = config.limits.redis.keyPrefix
  const memory = options.memory ?? new MemoryLimitStore()
  let store: LimitStore = memory
  const redis = config.limits.redis
  metrics.limitsStoreUp.set(1)
  if (config.limits.store === 'redis' && redis.url !== undefined) {
    metrics.limitsStoreUp.set(0)
    const { RedisLimitStore } = await import('./redis-store.js')
    store = new RedisLimitStore({
      config: { ...redis, url: redis.url },
      local: memory,
      log,
      onAvailability: (available) => metrics.limitsStoreUp.set(available ? 1 : 0)
    })
  }

  // One plan per (account, caller) pair, made on first use: the pairs are the configured names.
  const plans = new Map<string, LimitPlan | null>()
  const planFor = (account: string, caller: string | undefined): LimitPlan | null => {
    const id = caller === undefined ? account : `${account} ${caller}`
    let plan = plans.get(id)
    if (plan !== undefined) return plan
    const keys: string[] = []
    const rules: LimitRule[] = []
    const scopes: LimitScope[] = []
    const callerRule = caller !== undefined ? callerRules.get(caller) : undefined
    if (callerRule !== undefined) {
      keys.push(limitKey(prefix, 'caller', caller as string))
      rules.push(callerRule)
      scopes.push('caller')
    }
    const accountRule = accountRules.get(account)
    if (accountRule !== undefined) {
      keys.push(limitKey(prefix, 'account', account))
      rules.push(accountRule)
      scopes.push('account')
    }
    plan = keys.length === 0 ? null : Object.freeze({ keys, rules, scopes, pauseKey: limitKey(prefix, 'pause', account) })
    plans.set(id, plan)
    return plan
  }

  const refuse = (request: FastifyRequest, account: string, plan: LimitPlan, decision: Decision): StageVerdict => {
    if (decision === undefined) return undefined
    if (decision.scope === 'unavailable') return UNAVAILABLE
    metrics.rateLimited.inc({ caller: callerLabel(request), account, scope: decision.scope })
    return rateLimited(decision.scope, decision.rule >= 0 ? plan.rules[decision.rule] : undefined, decision.waitMs)
  }

  const inFlight = new Map<string, number>()
  const stage: InboundStage = {
    name: 'limits',
    check (request, reply) {
      const account = request.routeOptions.config.account
      if (account === undefined) return undefined
      const caller = request.caller?.name
      // The caller's share of the gate: a place is taken now and given back when the response closes.
      let release: (() => void) | undefined
      if (caller !== undefined && callerShares.has(caller)) {
        const taken = inFlight.get(caller) ?? 0
        if (taken >= (callerShares.get(caller) as number)) {
          metrics.rateLimited.inc({ caller, account, scope: 'caller' })
          return concurrencyRefusal(callerShares.get(caller) as number)
        }
        inFlight.set(caller, taken + 1)
        let released = false
        release = () => {
          if (released) return
          released = true
          inFlight.set(caller, (inFlight.get(caller) as number) - 1)
        }
        reply.raw.once('close', release)
      }
      const plan = planFor(account, caller)
      if (plan === null) return undefined
      const decision = store.decide(plan)
      if (decision === undefined) return undefined
      if (decision instanceof Promise) {
        return decision.then((settled) => {
          const verdict = refuse(request, account, plan, settled)
          if (verdict !== undefined) release?.()
          return verdict
        })
      }
      release?.()
      return refuse(request, account, plan, decision)
    }
  }

  return {
    stage,
    pausesOnUpstream: (account) => accountRules.has(account),
    upstreamLimited (account, retryAfter) {
      const ms = retryAfterMs(retryAfter, now())
      if (ms === undefined || ms <= 0) return
      const pauseMs = Math.min(ms, MAX_UPSTREAM_PAUSE_MS)
      if (store.pause(limitKey(prefix, 'pause', account), pauseMs)) {
        metrics.upstreamPauses.inc({ account })
        log.warn({ account, pauseMs }, 'PAVE answered 429: the account\'s budget pauses; its callers get the proxy\'s 429 meanwhile')
      }
    },
    state: store.state,
    close: store.close
  }
}

const UNAVAILABLE: Refusal = Object.freeze({ code: 'PAVE_PROXY_LIMITS_UNAVAILABLE', headers: Object.freeze({ 'retry-after': '1' }) })

/** The 429 with `Retry-After`, `RateLimit-Policy` (the refusing rule) and `RateLimit`. */
export function rateLimited (scope: LimitScope, rule: LimitRule | undefined, waitMs: number): Refusal {
  const seconds = retryAfterSeconds(waitMs)
  const headers: Record<string, string> = {
    'retry-after': String(seconds),
    ratelimit: `"${scope}";r=0;t=${seconds}`
  }
  if (rule !== undefined) headers['ratelimit-policy'] = policyField(scope, rule)
  return { code: 'PAVE_PROXY_RATE_LIMITED', headers }
}

/** Over its share of in-flight requests: a concurrency quota (the draft's `concurrent-requests` unit). */
export function concurrencyRefusal (maxInFlight: number): Refusal {
  return {
    code: 'PAVE_PROXY_RATE_LIMITED',
    headers: {
      'retry-after': '1',
      'ratelimit-policy': `"caller-in-flight";q=${maxInFlight};qu="concurrent-requests"`,
      ratelimit: '"caller-in-flight";r=0'
    }
  }
}

/**
 * A GCRA limit as a quota policy: `q` requests per `w` seconds at the steady rate (w
 * the smallest whole number of seconds holding one request), and the burst as the
 * vendor parameter `pave-burst`.
 */
export function policyField (scope: LimitScope, rule: LimitRule): string {
  const window = rule.requestsPerSecond >= 1 ? 1 : Math.ceil(1 / rule.requestsPerSecond)
  return `"${scope}";q=${Math.floor(rule.requestsPerSecond * window)};w=${window};pave-burst=${rule.burst}`
}

/** `Retry-After` as ms from now: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or malformed. */
export function retryAfterMs (value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim()
  if (text === undefined || text === '') return undefined
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : at - nowMs
}
