import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { startOtlpReceiver } from '../helpers/otlp-receiver.js'
import { collect, spawnMain, waitForOutput } from '../helpers/spawn.js'
import { ACCOUNT } from '../helpers/upstream.js'

async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const failures = async (metricsText: string): Promise<number> => Number(/pave_proxy_trace_export_failures_total (\d+)/.exec(metricsText)?.[1] ?? -1)
const warnings = (logs: string[]): string[] => logs.filter((l) => l.includes('cannot export traces'))

t.test('an unreachable collector: requests are served as usual, failures are counted and logged once a minute at most', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`, OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=collector-key-not-real', OTEL_EXPORTER_OTLP_TIMEOUT: '1000' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  t.equal(await failures(await (await request(`${proxy.url}/metrics`)).body.text()), 0, 'the counter exists from the start')
  for (let round = 0; round < 2; round++) {
    const started = performance.now()
    for (let i = 0; i < 5; i++) {
      const res = await request(`${proxy.url}/v1/sessions`)
      t.equal(res.statusCode, 200)
      await res.body.dump()
    }
    t.ok(performance.now() - started < 2_000, 'not slowed down')
    await proxy.app.tracing?.flush()
  }
  t.equal(await failures(await (await request(`${proxy.url}/metrics`)).body.text()), 2, 'two failed exports')
  const logged = warnings(proxy.logs)
  t.equal(logged.length, 1, 'logged once within the minute')
  t.match(logged[0], /"level":40/)
  t.match(logged[0], /ECONNREFUSED/, 'with what went wrong')
  t.notOk(proxy.logs.some((l) => l.includes('collector-key-not-real')), 'never the collector headers')
})

t.test('a collector that never answers: the export times out, the drain is not held up', async (t) => {
  const receiver = await startOtlpReceiver({ hang: true })
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_TIMEOUT: '300' } })
  t.teardown(async () => { await upstream.close(); await receiver.close() })
  const res = await request(`${proxy.url}/v1/sessions`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const started = performance.now()
  await proxy.close()
  const took = performance.now() - started
  t.ok(took < 3_000, `closed in ${Math.round(took)} ms`)
  t.match(await proxy.app.metrics.registry.getSingleMetricAsString('pave_proxy_trace_export_failures_total'), /total 1/, 'the timed-out export is counted')
})

t.test('SIGTERM: the last spans are exported after the in-flight request finished, before the process exits', async (t) => {
  const receiver = await startOtlpReceiver()
  const upstream = await startUpstream()
  t.teardown(async () => { await upstream.close(); await receiver.close() })
  const child = spawnMain([], {
    PAVE_USERNAME: ACCOUNT.username,
    PAVE_API_KEY: ACCOUNT.apiKey,
    PAVE_API_SECRET: ACCOUNT.secret,
    PAVE_UPSTREAM_URL: upstream.url,
    PORT: '0',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: '600000' // only the drain can send them
  })
  const output = collect(child)
  const [, port] = await waitForOutput(output.stdout, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/)
  const res = await request(`http://127.0.0.1:${port ?? ''}/v1/sessions`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.same(receiver.spans, [], 'nothing exported yet')
  child.kill('SIGTERM')
  const result = await output.done
  t.equal(result.code, 0)
  t.equal(receiver.spans.length, 2, 'server and client span exported by the drain')
  t.match(result.stdout, /"traceId":"[0-9a-f]{32}","spanId":"[0-9a-f]{16}"/, 'the access line joins the trace')
})
