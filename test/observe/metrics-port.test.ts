import t from 'tap'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { buildApp } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { logCapture, testConfig } from '../helpers/proxy.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { collect, spawnMain, waitForOutput } from '../helpers/spawn.js'

/** A proxy with `metrics.port` on two real listeners, both on 127.0.0.1 port 0. */
async function startWithMetricsPort (upstreamUrl: string, env: Record<string, string> = {}) {
  const config = testConfig({ upstreamUrl, env: { PAVE_PROXY_METRICS_PORT: '0', ...env } })
  const { stream, lines } = logCapture()
  const app = await buildApp(config, { logStream: stream })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const listener = app.metricsListener
  if (listener === undefined) throw new Error('no metrics listener')
  await listener.listen({ host: '127.0.0.1', port: 0 })
  return {
    app,
    lines,
    main: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    metrics: `http://127.0.0.1:${(listener.server.address() as AddressInfo).port}`
  }
}

async function get (url: string): Promise<{ status: number, headers: Record<string, unknown>, text: string }> {
  const res = await request(url)
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

t.test('metrics.port: /metrics and the probes on their own listener, /metrics off the main one', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startWithMetricsPort(upstream.url)
  t.teardown(async () => { await proxy.app.close(); await upstream.close() })

  const call = await get(`${proxy.main}/v1/sessions`)
  t.equal(call.status, 200, 'the main port proxies')
  for (const path of ['/healthz', '/readyz']) {
    t.equal((await get(proxy.main + path)).status, 200, `the main port keeps ${path} (the image's HEALTHCHECK and the probes use it)`)
    t.equal((await get(proxy.metrics + path)).status, 200, `the metrics port serves ${path}`)
  }
  const elsewhere = await get(`${proxy.main}/metrics`)
  t.equal(elsewhere.status, 404, 'the main port no longer serves /metrics')
  t.equal(elsewhere.headers['x-pave-proxy-error'], 'PAVE_PROXY_METRICS_ELSEWHERE')
  t.notMatch(elsewhere.text, /pave_proxy_/, 'and shows none of them')

  const scrape = await get(`${proxy.metrics}/metrics`)
  t.equal(scrape.status, 200)
  t.match(scrape.headers['content-type'], /^text\/plain/)
  t.match(scrape.text, /pave_proxy_requests_total\{account="default",method="GET",status_class="2xx",caller="anonymous"\} 1\n/, 'the proxied call, counted once')
  t.match(scrape.text, /pave_proxy_requests_total\{account="",method="GET",status_class="4xx",caller="anonymous"\} 1\n/, 'the refused /metrics on the main port is a request of the main port')
  t.match(scrape.text, /pave_proxy_requests_total\{account="",method="GET",status_class="2xx",caller="anonymous"\} 2\n/, 'the two probes of the main port; the metrics port\'s requests are not counted')
  t.match(scrape.text, /pave_proxy_upstream_responses_total\{account="default",status="200"\} 1\n/)
  t.match(scrape.text, /process_resident_memory_bytes \d+/)

  for (const path of ['/v1/sessions', '/test/v1/sessions', '/']) {
    const other = await get(proxy.metrics + path)
    t.equal(other.status, 404, `${path} is not served on the metrics port`)
    t.equal(other.headers['x-pave-proxy-error'], 'PAVE_PROXY_ADMIN_NOT_FOUND')
  }
  const post = await request(`${proxy.metrics}/metrics`, { method: 'POST', body: 'x' })
  t.equal(post.statusCode, 404, 'only GET')
  await post.body.dump()
  t.equal(upstream.received.length, 1, 'nothing on the metrics port reaches PAVE, nor the main port\'s /metrics')
  t.notOk(proxy.lines.some((line) => line.includes('"listener":"metrics"') && line.includes('request completed')), 'no access lines for scrapes')

  proxy.app.lifecycle.draining = true
  t.equal((await get(`${proxy.metrics}/readyz`)).status, 503, 'draining shows on the metrics port too')
  t.equal((await get(`${proxy.main}/readyz`)).status, 503)
  proxy.app.lifecycle.draining = false
})

t.test('closing the app closes the metrics listener', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const proxy = await startWithMetricsPort(upstream.url)
  t.equal((await get(`${proxy.metrics}/healthz`)).status, 200)
  await proxy.app.close()
  t.equal(proxy.app.metricsListener?.server.listening, false, 'no longer listening')
  await t.rejects(request(`${proxy.metrics}/healthz`), { code: 'ECONNREFUSED' })
})

t.test('without metrics.port there is no second listener and /metrics stays on the main port', async (t) => {
  const { stream } = logCapture()
  const app = await buildApp(testConfig({ upstreamUrl: 'http://127.0.0.1:9' }), { logStream: stream })
  t.teardown(() => app.close())
  t.equal(app.metricsListener, undefined)
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.body, /pave_proxy_requests_queued 0/)
})

const base = { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's' }

function problems (env: Record<string, string>, argv: string[] = [], file?: string): readonly string[] {
  try {
    loadConfig({ env: { ...base, ...(file !== undefined ? { PAVE_PROXY_CONFIG: '/etc/pave-proxy.yaml' } : {}), ...env }, argv, readFile: () => file ?? '' })
    return []
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
}

t.test('metrics.port and metrics.host: environment, flag, file, and what is refused', async (t) => {
  t.same(loadConfig({ env: base }).metrics, {}, 'default: no separate listener')
  t.same(loadConfig({ env: { ...base, PAVE_PROXY_METRICS_PORT: '9464' } }).metrics, { port: 9464 })
  t.same(loadConfig({ env: { ...base, PAVE_PROXY_METRICS_PORT: '9464', PAVE_PROXY_METRICS_HOST: '0.0.0.0' } }).metrics, { port: 9464, host: '0.0.0.0' })
  t.same(loadConfig({ env: { ...base, PAVE_PROXY_METRICS_PORT: '9464' }, argv: ['--metrics-port', '9500'] }).metrics, { port: 9500 }, 'the flag wins')
  t.same(loadConfig({ env: { ...base, PAVE_PROXY_CONFIG: '/f.yaml' }, readFile: () => 'metrics: { port: 9464, host: "::" }\n' }).metrics, { port: 9464, host: '::' }, 'the file')

  t.same(problems({ PAVE_PROXY_METRICS_PORT: 'x' }), ['PAVE_PROXY_METRICS_PORT must be integer'])
  t.same(problems({ PAVE_PROXY_METRICS_PORT: '70000' }), ['PAVE_PROXY_METRICS_PORT must be <= 65535'])
  t.same(problems({ PAVE_PROXY_METRICS_HOST: '0.0.0.0' }), ['PAVE_PROXY_METRICS_HOST needs metrics.port (PAVE_PROXY_METRICS_PORT)'])
  t.same(problems({}, [], 'metrics: { host: "0.0.0.0" }\n'), ['metrics.host (PAVE_PROXY_METRICS_HOST) needs metrics.port (PAVE_PROXY_METRICS_PORT)'])
  t.same(problems({}, [], 'metrics: { bind: 1 }\n'), ['metrics.bind is not a known setting'])
  t.same(problems({ PORT: '8080', PAVE_PROXY_METRICS_PORT: '8080' }), ['PAVE_PROXY_METRICS_PORT must differ from PORT'])
  t.same(problems({ PAVE_PROXY_METRICS_PORT: '8080' }), ['PAVE_PROXY_METRICS_PORT must differ from port (PORT)'], 'the default main port counts')
  t.same(problems({ PORT: '8080', PAVE_PROXY_METRICS_PORT: '8080', PAVE_PROXY_METRICS_HOST: '127.0.0.1' }), ['PAVE_PROXY_METRICS_PORT must differ from PORT'], 'the same host spelled out')
  t.same(problems({ PORT: '8080', PAVE_PROXY_METRICS_PORT: '8080', PAVE_PROXY_METRICS_HOST: '10.0.0.1' }), [], 'another address may use the same port')
  t.same(problems({ PORT: '0', PAVE_PROXY_METRICS_PORT: '0' }), [], 'both on free ports')
})

t.test('a reload cannot move the metrics listener: reported as needing a restart', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startWithMetricsPort(upstream.url)
  t.teardown(async () => { await proxy.app.close(); await upstream.close() })
  const moved = testConfig({ upstreamUrl: upstream.url, env: { PAVE_PROXY_METRICS_PORT: '9999' } })
  t.equal(proxy.app.reload(moved), true, 'the rest of the reload applies')
  t.match(proxy.lines.find((line) => line.includes('configuration reloaded')), /"restartNeeded":\["metrics"\]/)
  t.equal((await get(`${proxy.metrics}/healthz`)).status, 200, 'the listener stays where it is')
})

t.test('the process listens on metrics.port, logs its address, and stops it on SIGTERM', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const child = spawnMain([], {
    PAVE_USERNAME: ACCOUNT.username,
    PAVE_API_KEY: ACCOUNT.apiKey,
    PAVE_API_SECRET: ACCOUNT.secret,
    PAVE_UPSTREAM_URL: upstream.url,
    PORT: '0',
    PAVE_PROXY_METRICS_PORT: '0',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0'
  })
  const output = collect(child)
  const [line] = await waitForOutput(output.stdout, /\{[^\n]*"msg":"pave-proxy ready"\}/)
  const ready = JSON.parse(line) as { port: number, metrics: { host: string, port: number } }
  t.equal(ready.metrics.host, '127.0.0.1', 'on the main listener\'s host by default')
  t.not(ready.metrics.port, ready.port)
  t.equal((await get(`http://127.0.0.1:${ready.port}/v1/sessions`)).status, 200)
  const scrape = await get(`http://127.0.0.1:${ready.metrics.port}/metrics`)
  t.equal(scrape.status, 200)
  t.match(scrape.text, /pave_proxy_requests_total\{account="default",method="GET",status_class="2xx",caller="anonymous"\} 1\n/)
  child.kill('SIGTERM')
  const finished = await output.done
  t.equal(finished.code, 0)
  await t.rejects(request(`http://127.0.0.1:${ready.metrics.port}/healthz`), { code: 'ECONNREFUSED' })
})
