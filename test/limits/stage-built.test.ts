/** The limits stage exists only when something is limited. */
import t from 'tap'
import { pino } from 'pino'
import { testConfig } from '../helpers/proxy.js'
import { createLimits } from '../../src/inbound/limits/stage.js'
import { createMetrics } from '../../src/observe/metrics.js'
import type { Config } from '../../src/config/schema.js'

const base = testConfig({ upstreamUrl: 'http://127.0.0.1:1' })
const options = { log: pino({ level: 'silent' }), metrics: createMetrics({ processMetrics: false }) }
const withCallers = (callers: unknown[]): Config => ({ ...base, callers } as unknown as Config)

t.test('no limit anywhere: no stage, nothing built', async (t) => {
  t.equal(await createLimits(base, options), undefined)
  t.equal(await createLimits(withCallers([{ name: 'a' }]), options), undefined)
})

t.test('a caller limit alone, or a maxInFlight alone, is enough', async (t) => {
  const byRate = await createLimits(withCallers([{ name: 'a', limit: { requestsPerSecond: 1 } }]), options)
  t.equal(byRate?.stage.name, 'limits')
  t.equal(byRate?.pausesOnUpstream('default'), false, 'an account without a limit is not paused by PAVE\'s 429')
  const byShare = await createLimits(withCallers([{ name: 'a', maxInFlight: 1 }]), options)
  t.same(byShare?.state(), { store: 'memory' })
  await byRate?.close()
  await byShare?.close()
})
