/** Plain-text (Markdown) tables and target lines for the bench reports. */

export const MB = 1_000_000

export function fmtInt (value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '—'
}

export function fmtFixed (value: number, digits = 1, unit = ''): string {
  return Number.isFinite(value) ? `${value.toFixed(digits)}${unit}` : '—'
}

export function fmtRatio (value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '—'
}

export function fmtMB (bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / MB).toFixed(1)} MB` : '—'
}

export function fmtUs (us: number): string {
  return Number.isFinite(us) ? `${Math.round(us)} µs` : '—'
}

/** A Markdown table whose columns are padded to line up in a terminal too. */
export function renderTable (header: string[], rows: string[][], alignRight: boolean[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => (alignRight[i] === true ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join(' | ') + ' |'
  const rule = '|' + widths.map((w, i) => (alignRight[i] === true ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|'
  return [line(header), rule, ...rows.map(line)].join('\n')
}

export interface Target {
  /** What is required, e.g. `pave-proxy req/s ≥ 0.95 × floor`. */
  readonly target: string
  /** What was measured, e.g. `0.91× (9,100 vs 10,000 req/s)`. */
  readonly measured: string
  /** undefined: could not be evaluated (a contender was skipped or failed). */
  readonly met: boolean | undefined
}

export function renderTargets (targets: readonly Target[]): string {
  return renderTable(
    ['target', 'measured', 'result'],
    targets.map((t) => [t.target, t.measured, t.met === undefined ? 'n/a' : t.met ? 'met' : 'NOT MET'])
  )
}
