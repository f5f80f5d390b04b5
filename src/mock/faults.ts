/**
 * Faults pave-mock can inject on chosen paths, for tests of what a client does when
 * PAVE is slow, failing, or drops the connection. All off unless configured.
 */

/** When a reset or a hang happens: before any response byte, or after half of the body. */
export const FAULT_STAGES = ['before-headers', 'mid-body'] as const
export type FaultStage = typeof FAULT_STAGES[number]

/**
 * One fault rule. The first rule matching a request (method and path, query
 * ignored) that has uses left applies. Faults apply before the signature check,
 * the way a failing load balancer in front of PAVE would.
 */
export interface FaultRule {
  /**
   * Which paths: an exact path (`/v1/sessions`), a prefix ending in `*`
   * (`/v1/sessions/*`, or `*` for every path), or a RegExp tested against the path.
   */
  readonly path: string | RegExp
  /** Only this method (case-insensitive). Default: any method. */
  readonly method?: string | undefined
  /** Wait this long before answering (or before the other fault of the rule). Default 0. */
  readonly latencyMs?: number | undefined
  /**
   * Answer with this status and `{"message": <reason phrase>}` instead of handling
   * the request (nothing is created or changed). Default: handle normally.
   */
  readonly status?: number | undefined
  /**
   * Reset the TCP connection (RST): `before-headers` as soon as the request
   * arrives, or `mid-body` after the status line, the headers (with the full
   * `content-length`) and half of the body. A `mid-body` reset happens after the
   * request was handled, so whatever it created exists. Default: none.
   */
  readonly reset?: FaultStage | undefined
  /**
   * Stop answering and keep the connection open, `before-headers` or `mid-body`
   * (as for `reset`), until the client gives up or the mock closes. Default: none.
   */
  readonly hang?: FaultStage | undefined
  /** Apply to the first N matching requests only, then let requests through. Default: every request. */
  readonly times?: number | undefined
}

/** The rules in force, counting uses of those limited by `times`. */
export class FaultPlan {
  private rules: Array<{ rule: FaultRule, left: number }> = []

  constructor (rules: readonly FaultRule[] = []) {
    this.set(rules)
  }

  /** Replaces every rule (and resets their `times` counters). */
  set (rules: readonly FaultRule[]): void {
    this.rules = rules.map((rule) => ({ rule, left: rule.times ?? Infinity }))
  }

  /** The rule for this request, if any, counting one use of it. */
  take (method: string, path: string): FaultRule | undefined {
    const entry = this.rules.find(({ rule, left }) => left > 0 && matches(rule, method, path))
    if (entry === undefined) return undefined
    entry.left--
    return entry.rule
  }
}

function matches (rule: FaultRule, method: string, path: string): boolean {
  if (rule.method !== undefined && rule.method.toUpperCase() !== method.toUpperCase()) return false
  if (rule.path instanceof RegExp) return rule.path.test(path)
  if (rule.path.endsWith('*')) return path.startsWith(rule.path.slice(0, -1))
  return path === rule.path
}

const METHOD_PATTERN = /^[A-Za-z]+$/

/**
 * Parses the command-line form of a rule: `[METHOD] PATH [key=value]...` with keys
 * `latency` (ms), `status`, `reset`, `hang` and `times`, e.g.
 * `POST /v1/sessions status=503 times=1` or `/v1/sessions/* latency=2000`.
 */
export function parseFaultSpec (spec: string): FaultRule {
  const words = spec.trim().split(/\s+/)
  const method = METHOD_PATTERN.test(String(words[0])) ? words.shift() : undefined
  const path = words.shift()
  if (path === undefined || !(path.startsWith('/') || path === '*')) {
    throw new Error(`fault "${spec}": expected [METHOD] PATH [key=value]..., with PATH starting with / (or *)`)
  }
  const rule: { -readonly [K in keyof FaultRule]: FaultRule[K] } = { path, method: method?.toUpperCase() }
  for (const word of words) {
    const [key, value = ''] = word.split('=', 2) as [string, string | undefined]
    switch (key) {
      case 'latency': rule.latencyMs = integer(spec, key, value, 0); break
      case 'times': rule.times = integer(spec, key, value, 1); break
      case 'status': rule.status = integer(spec, key, value, 100, 599); break
      case 'reset':
      case 'hang':
        if (!(FAULT_STAGES as readonly string[]).includes(value)) throw new Error(`fault "${spec}": ${key} must be ${FAULT_STAGES.join(' or ')}`)
        rule[key] = value as FaultStage
        break
      default:
        throw new Error(`fault "${spec}": unknown setting "${key}" (expected latency, status, reset, hang or times)`)
    }
  }
  return rule
}

function integer (spec: string, key: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN
  if (!(n >= min && n <= max)) throw new Error(`fault "${spec}": ${key} must be an integer from ${min} to ${max}`)
  return n
}
