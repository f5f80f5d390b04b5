/**
 * What the monitoring tests need to know about PromQL and the proxy's metrics: the
 * metric names a query reads, the sample names the proxy exports, and Grafana's
 * template variables replaced the way Grafana would.
 */
/** Functions, aggregations and keywords: identifiers that are not metric names. */
const NOT_METRICS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan',
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group'
])

/**
 * The metric names a PromQL expression reads: every identifier that is not a function
 * call, a keyword, a label name (inside `{…}`, `by (…)`, `on (…)` and the like), a
 * string, a duration or a number. `{__name__="x"}` selectors count too.
 */
export function metricNames (expr: string): string[] {
  const names = new Set<string>()
  for (const match of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.add(match[1] as string)
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' $1 ') // label lists
  for (const match of stripped.matchAll(/(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?/g)) {
    const [, name, call] = match as unknown as [string, string, string | undefined]
    if (call !== undefined) continue // a function
    if (NOT_METRICS.has(name.toLowerCase())) continue
    names.add(name)
  }
  return [...names].sort()
}

/**
 * The names a Prometheus text exposition exports: its sample names, and every family
 * it declares (`# TYPE`) even before a labelled metric has its first series; a
 * histogram exports `_bucket`, `_sum` and `_count`, a summary itself, `_sum` and `_count`.
 */
export function exportedNames (exposition: string): Set<string> {
  const names = new Set<string>()
  for (const line of exposition.split('\n')) {
    const declared = /^# TYPE ([A-Za-z_:][\w:]*) (\w+)/.exec(line)
    if (declared !== null) {
      const [, name, type] = declared as unknown as [string, string, string]
      const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : ['']
      for (const suffix of suffixes) names.add(name + suffix)
      continue
    }
    const sample = /^([A-Za-z_:][\w:]*)[{ ]/.exec(line)
    if (sample !== null) names.add(sample[1] as string)
  }
  return names
}

/** Grafana's template variables as a smoke sets them: every account and caller, a fixed rate interval. */
export function substituteVariables (expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c) as string
    const value = values[name]
    if (value === undefined) throw new Error(`no value for the dashboard variable ${whole} in: ${expr}`)
    return value
  })
}
