/**
 * Applying a new configuration to a running proxy without a restart.
 *
 * What changes live: account credentials (username, API key, secret) and the
 * log level. What needs a restart: the set of accounts and their prefixes (the
 * routes), the listener, the upstream and the limits — a reload that changes
 * the accounts or prefixes is refused whole; other restart-only changes are
 * reported and left for the next start.
 */
import type { Config } from './schema.js'

export type ReloadPlan =
  | { readonly ok: true, readonly restartNeeded: readonly string[] }
  | { readonly ok: false, readonly reason: string }

const RESTART_ONLY = ['host', 'port', 'bodyLimit', 'upstream', 'signing', 'shutdown', 'inbound', 'limits', 'metrics'] as const

export function planReload (current: Config, next: Config): ReloadPlan {
  const routes = (config: Config): string => JSON.stringify(config.accounts.map((a) => [a.name, a.prefix]).sort())
  if (routes(current) !== routes(next)) {
    return { ok: false, reason: 'the accounts or their prefixes changed: restart to apply' }
  }
  const restartNeeded: string[] = RESTART_ONLY.filter((key) => JSON.stringify(current[key]) !== JSON.stringify(next[key]))
  // The limit stage is built once: a changed account limit applies at the next start.
  const limits = (config: Config): string => JSON.stringify(config.accounts.map((a) => [a.name, a.limit ?? null]).sort())
  if (limits(current) !== limits(next)) restartNeeded.push('accounts[].limit')
  return { ok: true, restartNeeded }
}
