/**
 * The monitoring smoke: the alerts and the dashboard proven against a real Prometheus.
 *
 * 1. `promtool check rules` on the PrometheusRule's groups, `promtool test rules` on
 *    test/monitoring/alerts.test.yaml (each alert fires on what should fire it, not otherwise).
 * 2. The proxy (buildApp, with `metrics.port` and two token callers) in front of the PAVE
 *    mock, with traffic: successes, an account with a wrong secret (PAVE's 403), a
 *    connection PAVE resets (502), a PAVE that does not answer in time (504), overload
 *    (503), a rate-limited account (429), a caller without a token (401), a rejected
 *    reload, and PAVE's clock 45 s ahead.
 * 3. Debian's prometheus scraping the metrics listener every second, with the rules loaded.
 * 4. Every dashboard query (variables substituted) and every alert expression through
 *    `/api/v1/query`: none may error or name a metric the proxy does not export; the
 *    queries must return data where the traffic makes some; the alert expressions must
 *    hold for the faults made (and the no-success alert must not); every rule evaluates
 *    healthily in Prometheus.
 *
 * `npm run smoke:monitoring` runs it and prints the checks; test/monitoring/smoke.test.ts
 * runs it inside `npm test`.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { request } from 'undici'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/load.js'
import { DEMO_ACCOUNT, startPaveMock } from '../../src/mock/server.js'
import { findPrometheus, promtool, startPrometheus, type RunningPrometheus } from './prometheus.js'
import { exportedNames, metricNames, substituteVariables } from './promql.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const RULE_FILE = join(ROOT, 'deploy', 'kubernetes', 'monitoring', 'prometheusrule.yaml')
export const RULE_TESTS = join(ROOT, 'test', 'monitoring', 'alerts.test.yaml')
export const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'pave-proxy.json')
const JOB = 'pave-proxy'
/** What the dashboard's variables are set to: every job, account and caller; Grafana's rate interval at a 1 s scrape. */
export const VARIABLES = { job: JOB, account: '.*', caller: '.*', __rate_interval: '1m', __interval: '1s', __range: '1m', datasource: 'prometheus' }
/**
 * Dashboard series the smoke's traffic does not make (retries: none configured; pauses: the
 * mock sends no 429) or makes only by timing (a re-sign needs a 403 to a request signed before
 * the clock offset was learned): their queries must still evaluate, but may be empty.
 */
const MAY_BE_EMPTY = ['pave_proxy_upstream_retries_total', 'pave_proxy_upstream_pauses_total', 'pave_proxy_resigned_requests_total']
/** What each alert expression must return on the smoke's traffic ([] for "must not hold"). */
const EXPECTED_ALERT_DATA: Record<string, Array<Record<string, string>>> = {
  PaveProxyPaveRefusingSignatures: [{ account: 'wrong' }],
  PaveProxyClockOffsetHigh: [{ job: JOB }],
  PaveProxyPaveUnreachable: [{ code: 'PAVE_PROXY_UPSTREAM_TIMEOUT' }, { code: 'PAVE_PROXY_UPSTREAM_UNREACHABLE' }],
  PaveProxyOverloaded: [{ namespace: 'smoke' }],
  PaveProxyCallerRateLimited: [{ caller: 'intake', scope: 'account' }, { caller: 'reports', scope: 'caller' }],
  PaveProxyConfigReloadRejected: [{ namespace: 'smoke' }],
  PaveProxyNoSuccessfulRequests: []
}

export interface Check { readonly name: string, readonly ok: boolean, readonly detail?: string }
export interface SmokeReport {
  readonly checks: readonly Check[]
  /** Alerts with promtool unit tests, and how many evaluation cases. */
  readonly alertsTested: readonly string[]
  readonly ruleCases: number
  /** Dashboard queries evaluated (panel targets and variable queries). */
  readonly queriesEvaluated: number
  readonly emptyQueries: readonly string[]
  /** Names used by the dashboard or the alerts that the proxy does not export (expected empty). */
  readonly missingNames: readonly string[]
  readonly seconds: number
}

interface Rule { alert?: string, record?: string, expr: string }
interface Panel { title?: string, targets?: Array<{ expr?: string, refId?: string }>, panels?: Panel[] }
interface Dashboard { panels: Panel[], templating: { list: Array<{ name: string, type: string, query?: string | { query: string } }> } }

export async function runMonitoringSmoke (say: (line: string) => void = () => {}): Promise<SmokeReport> {
  const started = Date.now()
  const checks: Check[] = []
  const check = (name: string, ok: boolean, detail?: string): void => {
    checks.push({ name, ok, ...(detail !== undefined ? { detail } : {}) })
    say(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail !== undefined && !ok ? `\n     ${detail.replace(/\n/g, '\n     ')}` : ''}`)
  }
  const binaries = findPrometheus({ say })
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-monitoring-'))
  const stops: Array<() => Promise<void>> = []
  try {
    // 1. The rules, through promtool.
    const ruleObject = parseYaml(readFileSync(RULE_FILE, 'utf8')) as { spec: { groups: Array<{ name: string, rules: Rule[] }> } }
    writeFileSync(join(dir, 'rules.yaml'), stringifyYaml(ruleObject.spec))
    copyFileSync(RULE_TESTS, join(dir, 'alerts.test.yaml'))
    const rules = ruleObject.spec.groups.flatMap((group) => group.rules)
    const checked = await promtool(binaries, ['check', 'rules', 'rules.yaml'], dir)
    check(`promtool check rules: ${rules.length} rules`, checked.ok && checked.output.includes(`SUCCESS: ${rules.length} rules found`), checked.output)
    const tested = await promtool(binaries, ['test', 'rules', 'alerts.test.yaml'], dir)
    check('promtool test rules: every alert fires on its series and not on the look-alikes', tested.ok && /SUCCESS/.test(tested.output), tested.output)
    const unitTests = parseYaml(readFileSync(RULE_TESTS, 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string }> }> }
    const cases = unitTests.tests.flatMap((test) => test.alert_rule_test)
    const alertsTested = [...new Set(cases.map((c) => c.alertname))]
    const alerts = rules.flatMap((rule) => (rule.alert !== undefined ? [rule.alert] : []))
    check('every alert has unit tests', alerts.every((alert) => alertsTested.includes(alert)), `untested: ${alerts.filter((a) => !alertsTested.includes(a)).join(', ')}`)

    // 2. PAVE (the mock, its clock 45 s ahead) and the proxy with its metrics listener.
    const mock = await startPaveMock({
      clockOffsetMs: 45_000,
      faults: [
        { path: '/v1/unreachable', reset: 'before-headers' },
        { path: '/v1/hang', hang: 'before-headers' },
        { path: '/v1/slow', latencyMs: 400 }
      ]
    })
    stops.push(async () => { await mock.close() })
    const configFile = join(dir, 'pave-proxy.yaml')
    const tokens = { intake: 'intake-token-for-the-smoke', reports: 'reports-token-for-the-smoke' }
    for (const [name, token] of Object.entries(tokens)) writeFileSync(join(dir, `${name}.tokens`), token + '\n')
    const account = (name: string, prefix: string, secret: string, extra = ''): string =>
      `  - { name: ${name}, prefix: ${prefix}, username: ${DEMO_ACCOUNT.username}, apiKey: ${DEMO_ACCOUNT.apiKey}, apiSecret: ${secret}${extra} }\n`
    writeFileSync(configFile, [
      'logLevel: silent',
      `upstream: { url: "${mock.url}", timeoutMs: 300, retries: 0 }`,
      'capacity: { maxInFlight: 4, maxQueued: 1, queueTimeoutMs: 1000 }',
      'metrics: { port: 0 }',
      'accounts:',
      account('default', '/', DEMO_ACCOUNT.secret) +
      account('wrong', '/wrong', 'not-the-secret') +
      account('limited', '/limited', DEMO_ACCOUNT.secret, ', limit: { requestsPerSecond: 1, burst: 1 }'),
      'callers:',
      ...Object.keys(tokens).map((name) => `  - { name: ${name}, tokenFile: ${join(dir, `${name}.tokens`)}, allow: [{ methods: [GET], paths: ["/v1/**"] }]` +
        (name === 'reports' ? ', limit: { requestsPerSecond: 5, burst: 5 } }' : ' }'))
    ].join('\n') + '\n')
    const config = loadConfig({ env: { PAVE_PROXY_CONFIG: configFile, PORT: '0', PAVE_PROXY_SHUTDOWN_DELAY_MS: '0' } })
    const app = await buildApp(config, { logStream: new Writable({ write: (_chunk, _encoding, callback) => { callback() } }) })
    stops.push(async () => { await app.close() })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const listener = app.metricsListener as NonNullable<typeof app.metricsListener>
    await listener.listen({ host: '127.0.0.1', port: 0 })
    const proxyUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const metricsTarget = `127.0.0.1:${(listener.server.address() as AddressInfo).port}`
    // A reload that changes the routes is refused: the gauge and the counter show it.
    check('a reload changing the routes is rejected', !app.reload({ ...config, accounts: config.accounts.slice(0, 1) }))

    let running = true
    const statuses = new Map<number, number>()
    const call = async (path: string, caller?: keyof typeof tokens): Promise<void> => {
      try {
        const res = await request(proxyUrl + path, { headers: caller !== undefined ? { authorization: `Bearer ${tokens[caller]}` } : {} })
        await res.body.dump()
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      } catch {
        statuses.set(0, (statuses.get(0) ?? 0) + 1)
      }
    }
    const traffic = (async () => {
      for (let round = 0; running; round++) {
        // A success, PAVE's 403, a connection PAVE resets, a PAVE that does not answer in time.
        await Promise.all([call('/v1/callbacks', 'intake'), call('/wrong/v1/callbacks', 'intake'), call('/v1/unreachable', 'intake'), call('/v1/hang', 'intake')])
        if (round % 4 === 0) {
          // Overload: eight at once against four places and one queue slot; three at once on
          // an account allowed one per second; eight at once from a caller allowed five a
          // second; a caller without a token.
          await Promise.all([
            ...Array.from({ length: 8 }, async () => { await call('/v1/slow', 'intake') }),
            ...Array.from({ length: 3 }, async () => { await call('/limited/v1/callbacks', 'intake') }),
            ...Array.from({ length: 8 }, async () => { await call('/v1/callbacks', 'reports') }),
            call('/v1/callbacks')
          ])
        }
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    stops.push(async () => { running = false; await traffic })

    // 3. Prometheus, scraping the metrics listener every second, with the alert rules.
    const prometheusConfig = join(dir, 'prometheus.yml')
    writeFileSync(prometheusConfig, stringifyYaml({
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: ['rules.yaml'],
      scrape_configs: [{ job_name: JOB, static_configs: [{ targets: [metricsTarget], labels: { namespace: 'smoke' } }] }]
    }))
    const prometheus = await startPrometheus(binaries, prometheusConfig, join(dir, 'data'))
    stops.push(prometheus.stop)
    say(`prometheus at ${prometheus.url} scraping ${metricsTarget}`)
    const scrapes = await waitForScrapes(prometheus, 8)
    check('prometheus scrapes the metrics listener', scrapes >= 8, `${scrapes} successful scrapes; log: ${prometheus.log()}`)

    // 4. What the proxy exports, then every query.
    const exposition = await (await request(`http://${metricsTarget}/metrics`)).body.text()
    const exported = exportedNames(exposition)
    const missing = new Set<string>()
    const namesKnown = (what: string, expr: string): boolean => {
      const unknown = metricNames(expr).filter((name) => !exported.has(name))
      for (const name of unknown) missing.add(name)
      if (unknown.length > 0) check(`${what}: names only exported metrics`, false, `not exported: ${unknown.join(', ')} in ${expr}`)
      return unknown.length === 0
    }

    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
    const targets = flattenPanels(dashboard.panels).flatMap((panel) => (panel.targets ?? []).map((target) => ({ what: `panel "${panel.title ?? '?'}" ${target.refId ?? ''}`, expr: target.expr ?? '' })))
    let evaluated = 0
    const empty: string[] = []
    for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query ?? ''
      const match = /^label_values\((.*),\s*(\w+)\)$/.exec(query)
      if (match === null) {
        check(`variable $${variable.name}: a label_values(selector, label) query`, false, query)
        continue
      }
      const selector = substituteVariables(match[1] as string, VARIABLES)
      evaluated++
      const answer = await prometheus.api('/api/v1/series', { 'match[]': selector })
      const values = [...new Set(((answer.data ?? []) as Array<Record<string, string>>).map((series) => series[match[2] as string]).filter((v) => v !== undefined))]
      const known = namesKnown(`variable $${variable.name}`, selector)
      check(`variable $${variable.name}: ${query} → ${values.join(', ') || '(none)'}`, answer.status === 'success' && known && values.length > 0, answer.error)
    }
    for (const { what, expr } of targets) {
      const query = substituteVariables(expr, VARIABLES)
      evaluated++
      const answer = await prometheus.api('/api/v1/query', { query })
      const known = namesKnown(what, expr)
      const result = ((answer.data as { result?: unknown[] } | undefined)?.result ?? [])
      const mayBeEmpty = metricNames(expr).some((name) => MAY_BE_EMPTY.includes(name))
      if (result.length === 0) empty.push(what)
      check(`${what}: evaluates${result.length === 0 ? ' (no data)' : ''}`, answer.status === 'success' && known && (result.length > 0 || mayBeEmpty), answer.error ?? (result.length === 0 ? `no data for ${query}` : undefined))
    }

    // The alert expressions on the real series, and the rules' health inside Prometheus.
    for (const rule of rules) {
      const name = rule.alert ?? rule.record ?? '?'
      const answer = await prometheus.api('/api/v1/query', { query: rule.expr })
      const known = namesKnown(`alert ${name}`, rule.expr)
      const series = ((answer.data as { result?: Array<{ metric: Record<string, string> }> } | undefined)?.result ?? []).map((r) => r.metric)
      const expected = EXPECTED_ALERT_DATA[name] ?? []
      const holds = expected.length === 0
        ? series.length === 0
        : expected.every((labels) => series.some((s) => Object.entries(labels).every(([k, v]) => s[k] === v)))
      check(`alert ${name}: ${expected.length === 0 ? 'does not hold' : 'holds for ' + expected.map((l) => JSON.stringify(l)).join(' ')} on the smoke's traffic`,
        answer.status === 'success' && known && holds, answer.error ?? `got ${JSON.stringify(series)}`)
    }
    const health = await waitForRuleHealth(prometheus, rules.length)
    check(`prometheus evaluates all ${rules.length} rules without error`, health.ok, health.detail)
    check('the traffic made every kind of answer', [200, 401, 403, 429, 502, 503, 504].every((status) => (statuses.get(status) ?? 0) > 0), JSON.stringify(Object.fromEntries(statuses)))

    return {
      checks,
      alertsTested,
      ruleCases: cases.length,
      queriesEvaluated: evaluated,
      emptyQueries: empty,
      missingNames: [...missing].sort(),
      seconds: Math.round((Date.now() - started) / 100) / 10
    }
  } finally {
    for (const stop of stops.reverse()) await stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

function flattenPanels (panels: readonly Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...flattenPanels(panel.panels ?? [])])
}

/** Waits until Prometheus holds `count` successful scrapes of the job (at most 30 s). */
async function waitForScrapes (prometheus: RunningPrometheus, count: number): Promise<number> {
  const deadline = Date.now() + 30_000
  let seen = 0
  while (Date.now() < deadline) {
    const answer = await prometheus.api('/api/v1/query', { query: `sum_over_time(up{job="${JOB}"}[1m])` })
    const result = (answer.data as { result?: Array<{ value: [number, string] }> } | undefined)?.result ?? []
    seen = Number(result[0]?.value[1] ?? 0)
    if (seen >= count) break
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return seen
}

/** Waits until every rule has been evaluated once; ok when all are healthy. */
async function waitForRuleHealth (prometheus: RunningPrometheus, count: number): Promise<{ ok: boolean, detail: string }> {
  const deadline = Date.now() + 10_000
  let detail = ''
  while (Date.now() < deadline) {
    const answer = await prometheus.api('/api/v1/rules')
    const rules = ((answer.data as { groups?: Array<{ rules: Array<{ name: string, health: string, lastError?: string }> }> } | undefined)?.groups ?? []).flatMap((g) => g.rules)
    detail = JSON.stringify(rules.map((r) => [r.name, r.health, r.lastError ?? '']))
    if (rules.length === count && rules.every((r) => r.health !== 'unknown')) return { ok: rules.every((r) => r.health === 'ok'), detail }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return { ok: false, detail }
}

/* c8 ignore start -- the command-line entry point (npm run smoke:monitoring) */
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runMonitoringSmoke((line) => process.stdout.write(line + '\n')).then((report) => {
    const failed = report.checks.filter((c) => !c.ok)
    process.stdout.write(`\nalerts unit-tested: ${report.alertsTested.join(', ')} (${report.ruleCases} cases)\n`)
    process.stdout.write(`dashboard queries evaluated: ${report.queriesEvaluated}; without data: ${report.emptyQueries.join('; ') || 'none'}\n`)
    if (report.missingNames.length > 0) process.stdout.write(`metric names not exported by the proxy: ${report.missingNames.join(', ')}\n`)
    process.stdout.write(`${report.checks.length - failed.length} passed, ${failed.length} failed in ${report.seconds} s\n`)
    process.exitCode = failed.length === 0 ? 0 : 1
  }, (error: unknown) => {
    process.stderr.write(`monitoring smoke: ${(error as Error).message}\n`)
    process.exitCode = 1
  })
}
/* c8 ignore stop */
