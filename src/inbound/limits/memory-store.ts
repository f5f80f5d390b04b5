/**
 * The in-memory store: each process its own state, answered synchronously. Its keys
 * are the configured callers and accounts, so it never grows beyond them.
 */
import { performance } from 'node:perf_hooks'
import { nextTat, waitUs } from './gcra.js'
import type { Decision, LimitPlan, LimitStore } from './plan.js'

/** Monotonic microseconds (not the wall clock: a clock step must not refill or drain budgets). */
export function monotonicUs (): number {
  return Math.round(performance.now() * 1000)
}

export class MemoryLimitStore implements LimitStore {
  readonly #tats = new Map<string, number>()
  readonly #pausedUntil = new Map<string, number>()
  readonly #now: () => number

  /** `now`: microseconds from any fixed origin. Default {@link monotonicUs}. */
  constructor (now: () => number = monotonicUs) {
    this.#now = now
  }

  decide = (plan: LimitPlan): Decision => {
    const now = this.#now()
    const paused = this.pausedMs(plan.pauseKey, now)
    if (paused > 0) return { scope: 'upstream', rule: -1, waitMs: paused }
    const { keys, rules } = plan
    // Every budget must admit the request; only then is each one spent.
    let worst = 0
    let refusedBy = -1
    for (let i = 0; i < keys.length; i++) {
      const wait = waitUs(nextTat(this.#tats.get(keys[i] as string) ?? 0, now, rules[i]!), now, rules[i]!)
      if (wait > worst) {
        worst = wait
        refusedBy = i
      }
    }
    if (refusedBy >= 0) return { scope: plan.scopes[refusedBy]!, rule: refusedBy, waitMs: worst / 1000 }
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string
      this.#tats.set(key, nextTat(this.#tats.get(key) ?? 0, now, rules[i]!))
    }
    return undefined
  }

  pause = (pauseKey: string, ms: number): boolean => {
    const now = this.#now()
    const wasPaused = this.pausedMs(pauseKey, now) > 0
    const until = now + ms * 1000
    if (until > (this.#pausedUntil.get(pauseKey) ?? 0)) this.#pausedUntil.set(pauseKey, until)
    return !wasPaused
  }

  /** Milliseconds an account's pause still lasts (0: not paused). */
  pausedMs (pauseKey: string, now: number = this.#now()): number {
    const until = this.#pausedUntil.get(pauseKey)
    return until === undefined || until <= now ? 0 : (until - now) / 1000
  }

  state = (): Record<string, string> => ({ store: 'memory' })

  close = async (): Promise<void> => {}
}
