import t from 'tap'
import { buildApp } from '../src/app.js'
import { testConfig } from './helpers/proxy.js'
import { logCapture } from './helpers/proxy.js'

t.test('/healthz and /readyz are local and never forwarded', async (t) => {
  const { stream } = logCapture()
  const app = await buildApp(testConfig({ upstreamUrl: 'http://127.0.0.1:9' }), { logStream: stream })
  t.teardown(() => app.close())
  const health = await app.inject({ url: '/healthz' })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  t.equal(health.headers['cache-control'], 'no-store')
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
  app.lifecycle.draining = true
  const draining = await app.inject({ url: '/readyz' })
  t.equal(draining.statusCode, 503)
  t.same(draining.json(), { status: 'draining' })
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'alive while draining')
})
