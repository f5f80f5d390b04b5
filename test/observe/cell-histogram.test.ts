/** The plain-cell histogram reads exactly as prom-client's own would, for the same observations. */
import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { CellHistogram } from '../../src/observe/cell-histogram.js'

const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const observations: Array<[string, number]> = [
  ['default', 0.003], ['default', 0.005], ['default', 0.0051], ['default', 0.7], ['default', 31], ['default', 30],
  ['other', 0.2], ['other', 12], ['with "quote"', 0.01]
]

t.test('same exposition as prom-client\'s Histogram', async (t) => {
  const theirs = new Registry()
  const ours = new Registry()
  const reference = new Histogram({ name: 'h_seconds', help: 'A histogram.', labelNames: ['account'], buckets, registers: [theirs] })
  const cells = new CellHistogram({ name: 'h_seconds', help: 'A histogram.', labelName: 'account', buckets: [...buckets].reverse(), registers: [ours] })
  for (const [account, value] of observations) {
    reference.labels(account).observe(value)
    cells.labels(account).observe(value)
  }
  t.equal(await ours.metrics(), await theirs.metrics())
  type Exposed = Array<{ value: number, labels: object, metricName?: string }>
  const values = async (r: Registry): Promise<unknown> => ((await r.getMetricsAsJSON())[0]?.values as Exposed).map(({ value, labels, metricName }) => ({ value, labels, metricName }))
  t.same(await values(ours), await values(theirs), 'and the same values as JSON')
})

t.test('a cell is kept: the same label value gives the same cell; reset zeroes every cell', async (t) => {
  const registry = new Registry()
  const cells = new CellHistogram({ name: 'h', help: 'h', labelName: 'account', buckets: [1], registers: [registry] })
  t.equal(cells.labels('a'), cells.labels('a'))
  cells.labels('a').observe(2)
  t.match(await registry.metrics(), /h_bucket\{le="1",account="a"\} 0\nh_bucket\{le="\+Inf",account="a"\} 1\nh_sum\{account="a"\} 2\nh_count\{account="a"\} 1/)
  registry.resetMetrics()
  t.match(await registry.metrics(), /h_count\{account="a"\} 0/)
})
