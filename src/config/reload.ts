/**
 * Applying a new configuration to a running proxy without a restart.
 *
 * What changes live: account credentials (username, API key, secret), the
 * log level, the gateway's callers (tokens, proofs, rules, `metrics.callers`), and the
 * listener's TLS certificate, key and client CA (their contents, swapped into the
 * running listener; see `inbound/listener-tls.ts`). Switching the gateway on or off
 * (adding or removing `callers` altogether) needs a restart, and so does the audit
 * file. What needs a restart: the set of accounts and their prefixes (the
 * routes), the listener, the upstream, the limits and tracing — a reload that changes
 * the accounts or prefixes is refused whole; other restart-only changes are
 * reported and left for the next start. For TLS, turning it on or off, adding or
 * removing the client CA, or changing `clientAuth` needs a restart (`tls` is then
 * reported and the running certificate stays); new file contents do not.
 */
import type { Config } from './schema.js'

export type ReloadPlan =
  | { readonly ok: true, readonly restartNeeded: readonly string[] }
  | { readonly ok: false, readonly reason: string }

const RESTART_ONLY = ['host', 'port', 'bodyLimit', 'upstream', 'signing', 'shutdown', 'inbound', 'audit', 'tracing'] as const

export function planReload (current: Config, next: Config): ReloadPlan {
  const routes = (config: Config): string => JSON.stringify(config.accounts.map((a) => [a.name, a.prefix]).sort())
  if (routes(current) !== routes(next)) {
    return { ok: false, reason: 'the accounts or their prefixes changed: restart to apply' }
  }
  if ((current.callers === undefined) !== (next.callers === undefined)) {
    return { ok: false, reason: 'callers were added or removed altogether (the gateway switched on or off): restart to apply' }
  }
  const restartNeeded: string[] = RESTART_ONLY.filter((key) => JSON.stringify(current[key]) !== JSON.stringify(next[key]))
  if (tlsShape(current) !== tlsShape(next)) restartNeeded.push('tls')
  return { ok: true, restartNeeded }
}

/** What of the listener's TLS a reload cannot change: on or off, and how client certificates are asked for. */
function tlsShape (config: Config): string {
  return config.tls === undefined ? 'off' : `on, client certificates: ${config.tls.clientAuth ?? 'none'}`
}

/** Whether a reload brings new TLS material (certificate, key or client CA contents) for a running listener. */
export function tlsMaterialChanged (current: Config, next: Config): boolean {
  if (current.tls === undefined || next.tls === undefined) return false
  return current.tls.cert !== next.tls.cert || current.tls.key !== next.tls.key || current.tls.clientCa !== next.tls.clientCa
}
