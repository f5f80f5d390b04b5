import t from 'tap'
import { exportedNames, metricNames, substituteVariables } from './promql.js'

t.test('metricNames: metrics, not functions, keywords, labels, strings, durations or numbers', async (t) => {
  t.same(metricNames('sum by (status_class) (rate(pave_proxy_requests_total{account=~"a|b", caller!="x"}[5m]))'), ['pave_proxy_requests_total'])
  t.same(metricNames('histogram_quantile(0.99, sum by (le) (rate(pave_proxy_upstream_duration_seconds_bucket[1m] offset 5m)))'), ['pave_proxy_upstream_duration_seconds_bucket'])
  t.same(metricNames('a / on (namespace) group_left (code) b > bool 0.05 unless ignoring(pod) c and d or e'), ['a', 'b', 'c', 'd', 'e'])
  t.same(metricNames('{__name__="pave_proxy_errors_total", code="x"} + abs(y) * 1e3 + inf'), ['pave_proxy_errors_total', 'y'])
  t.same(metricNames('count_values("v", m) + topk(3, n) + max_over_time(o[1m:10s]) + vector(1) + time()'), ['m', 'n', 'o'])
  t.same(metricNames('sum without (instance) (p) + q:recorded:rate5m'), ['p', 'q:recorded:rate5m'])
})

t.test('exportedNames: samples and declared families, histograms with their series', async (t) => {
  const names = exportedNames([
    '# HELP a_total A.', '# TYPE a_total counter', 'a_total{x="1"} 3',
    '# HELP b_total B, no series yet.', '# TYPE b_total counter',
    '# TYPE h_seconds histogram', 'h_seconds_bucket{le="+Inf"} 1', 'h_seconds_sum 0.1', 'h_seconds_count 1',
    '# TYPE s summary',
    'plain 1', ''
  ].join('\n'))
  t.same([...names].sort(), ['a_total', 'b_total', 'h_seconds_bucket', 'h_seconds_count', 'h_seconds_sum', 'plain', 's', 's_count', 's_sum'])
})

t.test('substituteVariables: $x, ${x}, ${x:format} and [[x]]; an unknown variable is an error', async (t) => {
  const values = { job: 'pave-proxy', __rate_interval: '1m' }
  t.equal(substituteVariables('rate(m{job=~"$job"}[$__rate_interval]) + n{job="${job}"} + o{job="${job:regex}"} + p{job="[[job]]"}', values),
    'rate(m{job=~"pave-proxy"}[1m]) + n{job="pave-proxy"} + o{job="pave-proxy"} + p{job="pave-proxy"}')
  t.throws(() => substituteVariables('m{a="$nope"}', values), /no value for the dashboard variable \$nope/)
})
