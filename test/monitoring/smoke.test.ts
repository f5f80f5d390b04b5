/**
 * The monitoring smoke inside `npm test` (about 15 s): Debian's prometheus and promtool
 * against the proxy and the PAVE mock. See smoke.ts for what it proves.
 */
import t from 'tap'
import { runMonitoringSmoke } from './smoke.js'

t.test('the alerts and the dashboard, proven against a real Prometheus', async (t) => {
  const report = await runMonitoringSmoke()
  for (const check of report.checks) t.ok(check.ok, check.name, check.ok ? {} : { detail: check.detail })
  t.ok(report.checks.length > 30, `${report.checks.length} checks`)
  t.same(report.missingNames, [], 'every metric the dashboard and the alerts name is exported by the proxy')
  t.ok(report.queriesEvaluated >= 30, `${report.queriesEvaluated} dashboard queries evaluated`)
  t.equal(report.alertsTested.length, 7, `alerts unit-tested: ${report.alertsTested.join(', ')}`)
})
