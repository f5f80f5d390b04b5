/**
 * The policy stage (with `callers` configured): what the proved caller may do.
 *
 * A caller may use the accounts it names (all when it names none) and, on them,
 * only what an `allow` rule gives: the method, and the path as PAVE will see it
 * (account prefix removed, query ignored) — matched after the target check refused
 * every ambiguous path. Anything else, a path no account serves included: 403
 * `PAVE_PROXY_CALLER_FORBIDDEN`, which names neither the rules nor what was missing.
 * `/metrics`, when `metrics.callers` is set, only for the callers it names.
 */
import { kPolicy, type KnownCaller } from './callers.js'
import type { CallersRef } from './identity.js'
import { refusal, type InboundStage } from './pipeline.js'

const FORBIDDEN = refusal('PAVE_PROXY_CALLER_FORBIDDEN')

export function createPolicyStage (callers: CallersRef): InboundStage {
  return {
    name: 'policy',
    check (request) {
      const caller = request.caller as KnownCaller | undefined
      if (caller === undefined) return undefined // an open route: the identity stage let it through
      const table = callers.current
      const route = request.routeOptions
      if (route.url === '/metrics') return table.metricsCallers.has(caller.name) ? undefined : FORBIDDEN
      const account = route.config.account
      if (account === undefined) return FORBIDDEN
      const policy = caller[kPolicy]
      if (policy.accounts !== undefined && !policy.accounts.has(account)) return FORBIDDEN
      const url = request.raw.url as string
      const queryAt = url.indexOf('?')
      let path = url.slice(table.prefixLength.get(account) as number, queryAt === -1 ? url.length : queryAt)
      if (path === '') path = '/'
      return policy.rules(request.method, path) ? undefined : FORBIDDEN
    }
  }
}
