/**
 * A caller's `allow` rules, compiled once when the configuration is loaded: one
 * regular expression per method, the union of every path the rules give that
 * method. Paths are matched as PAVE will see them (account prefix removed, query
 * ignored) and only after the target check has refused every path with more than
 * one meaning (dot segments, encoded slashes, `;`, `//`…), so a segment here is a
 * segment there. Matching is case-sensitive: `/V1/sessions` is not `/v1/sessions`.
 */
import { ALLOW_METHODS, type AllowRule } from '../config/schema.js'

/** Whether a method may be used on a path (without the query). */
export type RuleMatcher = (method: string, path: string) => boolean

/** The regular expression source of one validated path pattern (see `config/callers.ts`). */
export function patternSource (pattern: string): string {
  if (pattern === '/') return '/'
  let source = ''
  for (const segment of pattern.slice(1).split('/')) {
    if (segment === '**') return `${source}(?:/.*)?`
    source += segment === '*' ? '/[^/]+' : '/' + segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return source
}

export function compileRules (rules: readonly AllowRule[]): RuleMatcher {
  const byMethod = new Map<string, string[]>()
  for (const rule of rules) {
    const methods = rule.methods.includes('*') ? ALLOW_METHODS : rule.methods
    for (const method of methods) {
      let sources = byMethod.get(method)
      if (sources === undefined) byMethod.set(method, sources = [])
      for (const path of rule.paths) sources.push(patternSource(path))
    }
  }
  const compiled = new Map<string, RegExp>()
  for (const [method, sources] of byMethod) compiled.set(method, new RegExp(`^(?:${[...new Set(sources)].join('|')})$`))
  return (method, path) => compiled.get(method)?.test(path) === true
}
