/**
 * What one request is checked against, and what a store answers. A plan is built
 * once per (caller, account) pair and reused: its keys are computed up front.
 *
 * Keys are `keyPrefix` + the JSON encoding of `[kind, name]` — for example
 * `pave-proxy:["account","test"]` — so an account and a caller of the same name, or
 * names that only differ by a separator, can never share state.
 */
import type { LimitRule } from './gcra.js'

/** Which budget refused: a caller's, an account's, or an account paused after PAVE's own 429. */
export type LimitScope = 'caller' | 'account' | 'upstream'

export interface LimitPlan {
  /** The budgets the request spends, all or none. */
  readonly keys: readonly string[]
  readonly rules: readonly LimitRule[]
  readonly scopes: readonly LimitScope[]
  /** The account's pause key (set while PAVE asked to wait). */
  readonly pauseKey: string
}

/** A store's answer: `undefined` admits; otherwise who refused and for how long. */
export type Decision = undefined | Limited

export interface Limited {
  readonly scope: LimitScope | 'unavailable'
  /** The rule that refused (index into the plan), or -1 for a pause or an unavailable store. */
  readonly rule: number
  /** How long until a request would be admitted, ms. */
  readonly waitMs: number
}

/** A store: the memory store answers at once; the Redis store waits at most its timeout. */
export interface LimitStore {
  readonly decide: (plan: LimitPlan) => Decision | Promise<Decision>
  /** Pauses an account's budget for `ms` (never shortens a longer pause); true when a new pause begins here. */
  readonly pause: (pauseKey: string, ms: number) => boolean
  /** For `/readyz`. */
  readonly state: () => Record<string, string>
  readonly close: () => Promise<void>
}

/** The store key of one budget. */
export function limitKey (prefix: string, kind: 'caller' | 'account' | 'pause', name: string): string {
  return prefix + JSON.stringify([kind, name])
}
