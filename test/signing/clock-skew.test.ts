import t from 'tap'
import { ClockSkew, CLOCK_SKEW_MAX_OFFSET_MS } from '../../src/signing/clock-skew.js'

t.test('the offset is the median of recent samples, sampled at most once a second', async (t) => {
  const changes: Array<[number, boolean]> = []
  const skew = new ClockSkew({ warnThresholdMs: 30_000, now: () => 0, onChange: (offset, crossed) => changes.push([offset, crossed]) })
  const at = (local: number, upstream: number): string => new Date(local + upstream).toUTCString()
  skew.observe(at(10_000, 60_000), 10_000, 10_000)
  t.equal(skew.offsetMs, 60_500 - 0, 'Date + 0.5 s minus the local midpoint')
  skew.observe(at(10_500, 0), 10_400, 10_600)
  t.equal(skew.offsetMs, 60_500, 'a sample inside the interval is skipped')
  skew.observe(at(10_500, 0), 10_400, 10_600, true)
  t.ok(skew.offsetMs < 60_500, 'a forced sample (403) is taken')
  skew.observe(at(20_000, 60_000), 20_000, 20_000)
  skew.observe(at(30_000, 60_000), 30_000, 30_000)
  t.equal(skew.offsetMs, 60_500, 'one odd sample does not move the median')
  t.ok(skew.beyondThreshold)
  t.same(changes[0], [60_500, true], 'crossing the threshold is reported')
})

t.test('missing, unparsable and absurd headers are ignored', async (t) => {
  const skew = new ClockSkew({ warnThresholdMs: 30_000 })
  skew.observe(undefined, 0, 0, true)
  skew.observe('yesterday-ish', 0, 0, true)
  skew.observe(new Date(Date.now() + CLOCK_SKEW_MAX_OFFSET_MS + 3_600_000).toUTCString(), Date.now(), Date.now(), true)
  t.equal(skew.offsetMs, 0)
  t.notOk(skew.beyondThreshold)
  t.ok(Math.abs(skew.now() - Date.now()) < 1_000, 'the local clock by default')
})

t.test('falling back under the threshold is reported once', async (t) => {
  const changes: Array<[number, boolean]> = []
  const skew = new ClockSkew({ warnThresholdMs: 1_000, onChange: (offset, crossed) => changes.push([offset, crossed]) })
  skew.observe(new Date(5_000).toUTCString(), 0, 0, true)
  skew.observe(new Date(0).toUTCString(), 0, 0, true)
  skew.observe(new Date(0).toUTCString(), 0, 0, true)
  skew.observe(new Date(0).toUTCString(), 0, 0, true)
  t.same(changes.map(([, crossed]) => crossed), [true, false, true])
  t.equal(skew.offsetMs, 500)
})
