import t from 'tap'
import { request } from 'undici'
import { buildApp } from '../../src/app.js'
import { logCapture, startProxy, testConfig } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { rawRequest } from '../helpers/raw-http.js'

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
  t.same(ready.json(), { status: 'ready', clockOffsetMs: 0, clockOffsetBeyondThreshold: false })
  app.lifecycle.draining = true
  const draining = await app.inject({ url: '/readyz' })
  t.equal(draining.statusCode, 503)
  t.same(draining.json(), { status: 'draining', clockOffsetMs: 0, clockOffsetBeyondThreshold: false })
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'alive while draining')
})

t.test('/readyz without clock-skew correction carries no clock details', async (t) => {
  const { stream } = logCapture()
  const app = await buildApp(testConfig({ upstreamUrl: 'http://127.0.0.1:9', env: { PAVE_CLOCK_SKEW_CORRECTION: 'false' } }), { logStream: stream })
  t.teardown(() => app.close())
  t.same((await app.inject({ url: '/readyz' })).json(), { status: 'ready' })
})

t.test('/metrics counts requests, errors, renewals and upstream latency', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const path of ['/v1/sessions', '/v1/callbacks']) {
    const res = await request(proxy.url + path)
    await res.body.dump()
  }
  // A client library would normalise the dot segment away: send it raw.
  t.equal((await rawRequest(proxy.port, 'GET /v1/../x HTTP/1.1\r\nHost: x\r\n\r\n')).status, 400)
  const res = await request(`${proxy.url}/metrics`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = await res.body.text()
  t.match(text, /pave_proxy_requests_total\{account="default",method="GET",status_class="2xx",caller="anonymous"\} 2/)
  t.match(text, /pave_proxy_requests_total\{account="default",method="GET",status_class="4xx",caller="anonymous"\} 1/)
  t.match(text, /pave_proxy_errors_total\{code="PAVE_PROXY_REQUEST_BAD_PATH"\} 1/)
  t.match(text, /pave_proxy_token_renewals_total\{account="default"\} 1/)
  t.match(text, /pave_proxy_upstream_duration_seconds_count\{account="default"\} 2/)
  t.match(text, /pave_proxy_requests_in_flight 1/, 'the /metrics request itself')
  t.match(text, /pave_proxy_clock_offset_seconds -?\d/)
  t.match(text, /process_resident_memory_bytes \d+/)
  t.equal(upstream.received.length, 2, '/metrics is not forwarded')
})
