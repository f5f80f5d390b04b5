/**
 * `npm run bench`: pave-proxy against the cheapest alternatives, on loopback.
 *
 * Contenders, each in front of the same fast upstream and adding the same three
 * PAVE headers: direct (the upstream alone), floor (node:http + undici Pool),
 * http-proxy, nginx (njs signs; only when installed) and pave-proxy (dist/main.js,
 * production defaults), and pave-proxy with tracing configured: sampler off, and
 * every request sampled and exported to an in-process collector sink (issue 14). Every round starts each contender afresh and measures:
 * start-up to the first served request, RSS at rest, requests/s and RSS under
 * BENCH_CONNECTIONS connections, latency with one connection. Medians over rounds.
 * Prints a table and the targets of issue 7; writes bench/results/latest.json.
 */
import { readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { loadNote, setUp, progress, writeResult } from './lib/setup.js'
import { freePort, sleep, stopAll, treeAnon, treeCpuSeconds, treeRss, sampleRss, which, waitServed } from './lib/proc.js'
import { findNginx, upstreamConfig, startNginx, errorLogTail, type NginxInstall } from './lib/nginx.js'
import { autocannonGenerator, wrkGenerator, type LoadGenerator, type LoadResult } from './lib/load.js'
import {
  checkSigning, paveProxyMissing, startFloor, startHttpProxy, startNginxProxy, startNodeUpstream, startPaveProxy, startPaveProxyGateway, startTraceSink, type Running
} from './lib/contenders.js'
import { median } from './lib/stats.js'
import { fmtFixed, fmtInt, fmtMB, fmtRatio, fmtUs, MB, renderTable, renderTargets, type Target } from './lib/table.js'
import { BENCH_PATH } from './lib/fixture.js'
import { limitsConfigFile, redisMissing, startBenchRedis } from './lib/limits.js'

const ctx = setUp()
const { knobs, cores, tmp } = ctx

interface Contender {
  readonly name: string
  readonly description: string
  readonly skipped: string | undefined
  start (round: number): Promise<Running>
  /** After stop: anything worth keeping about the round (e.g. log volume). */
  after? (round: number): Record<string, number>
}

interface RunFigures {
  round: number
  startupMs: number
  rssRest: number
  anonRest: number
  rssLoad: number
  anonLoad: number
  /** CPU time (user + system) the contender spent per request under load: robust to a busy machine. */
  cpuUsPerRequest: number
  /** Share of one core the contender used under load (1 = saturated). */
  busy: number
  load: LoadResult
  latency: LoadResult
  extra?: Record<string, number>
}

interface RunFailure {
  round: number
  error: string
}

function threadsFor (coreList: string | undefined): number {
  const range = /^(\d+)-(\d+)$/.exec(coreList ?? '')
  return range !== null ? Number(range[2]) - Number(range[1]) + 1 : 1
}

async function main (): Promise<void> {
  const skippedTools: string[] = []

  // Load generator.
  const wrk = knobs.useWrk ? which('wrk') : undefined
  if (wrk === undefined) skippedTools.push(knobs.useWrk ? 'wrk is not installed: autocannon measures throughput, a sequential Node client the 1-connection latency' : 'BENCH_WRK=0: autocannon and a sequential Node client instead of wrk')
  const load: LoadGenerator = wrk !== undefined ? wrkGenerator(wrk, cores.load, threadsFor(cores.load)) : autocannonGenerator(cores.load)

  // nginx (upstream and contender).
  const nginx: NginxInstall | string = knobs.useNginx ? findNginx() : 'BENCH_NGINX=0'
  let nginxSkip: string | undefined
  if (typeof nginx === 'string') {
    nginxSkip = `${nginx}: nginx contender skipped, Node upstream used`
    skippedTools.push(nginxSkip)
  } else if (nginx.njsModule === undefined) {
    nginxSkip = `nginx ${nginx.version} has no njs module (libnginx-mod-http-js): nginx contender skipped`
    skippedTools.push(nginxSkip)
  }

  // The upstream: nginx when present; the Node upstream always (it checks signatures).
  progress(`cores: ${cores.description}`)
  const verifier = await startNodeUpstream(cores.upstream)
  let upstream: Running
  let upstreamKind: string
  if (typeof nginx !== 'string') {
    const dir = join(tmp, 'nginx-upstream')
    const port = await freePort()
    const since = performance.now()
    const child = startNginx('nginx upstream', nginx, dir, upstreamConfig(dir, port, Number(new URL(verifier.origin).port)), cores.upstream)
    try {
      const startupMs = await waitServed(child, `http://127.0.0.1:${port}${BENCH_PATH}`, since)
      upstream = { name: 'nginx upstream', origin: `http://127.0.0.1:${port}`, pid: child.pid, startupMs, stop: () => child.stop() }
      upstreamKind = `nginx ${nginx.version}, 1 worker, fixed JSON body (return 200)`
    } catch (error) {
      throw new Error(`the nginx upstream did not start: ${(error as Error).message}\n${errorLogTail(dir)}`)
    }
  } else {
    upstream = verifier
    upstreamKind = 'Node node:http server (bench/upstream.ts), fixed JSON body'
  }
  const upstreamPort = Number(new URL(upstream.origin).port)
  progress(`upstream: ${upstreamKind} at ${upstream.origin}; load: ${load.name}`)

  const paveMissing = paveProxyMissing()
  const logFile = (round: number): string => join(tmp, `pave-proxy-${round}.log`)
  const logFigures = (file: string): Record<string, number> => {
    try {
      const bytes = statSync(file).size
      const lines = readFileSync(file, 'utf8').split('\n').length - 1
      return { logBytes: bytes, logLines: lines }
    } catch {
      return {}
    } finally {
      rmSync(file, { force: true })
    }
  }
  // The tracing contenders export to a collector that takes everything (issue 14's bench rows).
  const traceSink = await startTraceSink()
  const tracedLog = (name: string, round: number): string => join(tmp, `${name}-${round}.log`)
  const traced = (name: string, sampler: string, description: string): Contender => ({
    name,
    description,
    skipped: paveMissing,
    start: (round) => startPaveProxy({
      upstream: upstream.origin,
      cores: cores.proxy,
      logFile: tracedLog(name, round),
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: traceSink.url, OTEL_TRACES_SAMPLER: sampler },
      overrides: knobs.paveProxyEnv
    }),
    after: (round) => logFigures(tracedLog(name, round))
  })
  const all: Contender[] = [
    {
      name: 'direct',
      description: 'the upstream alone: the limit no proxy can beat',
      skipped: undefined,
      start: async () => ({ ...upstream, name: 'direct', startupMs: Number.NaN, stop: async () => {} })
    },
    {
      name: 'floor',
      description: 'node:http + undici Pool, no framework, no logging (bench/floor.ts)',
      skipped: undefined,
      start: () => startFloor(upstream.origin, cores.proxy)
    },
    {
      name: 'http-proxy',
      description: 'the http-proxy package, keep-alive agent, headers set in proxyReq (bench/http-proxy.ts)',
      skipped: undefined,
      start: () => startHttpProxy(upstream.origin, cores.proxy)
    },
    {
      name: 'nginx',
      description: 'nginx, 1 worker, keep-alive upstream pool, njs computes the HMAC per request, no access log',
      skipped: nginxSkip,
      start: (round) => startNginxProxy(nginx as NginxInstall, join(tmp, `nginx-proxy-${round}`), upstreamPort, cores.proxy)
    },
    {
      name: 'pave-proxy',
      description: 'node dist/main.js, production defaults (LOG_LEVEL=info, JSON access log to a file)',
      skipped: paveMissing,
      start: (round) => startPaveProxy({ upstream: upstream.origin, cores: cores.proxy, logFile: logFile(round), overrides: knobs.paveProxyEnv }),
      after: (round): Record<string, number> => logFigures(logFile(round))
    },
    {
      name: 'gateway: token caller + rules',
      description: 'pave-proxy in gateway mode: one caller with a bearer token, allow rules on the path (issue 12)',
      skipped: paveMissing,
      start: (round) => startPaveProxyGateway({ name: 'gateway: token caller + rules', caller: 'token', dir: join(tmp, `gateway-token-${round}`), upstream: upstream.origin, cores: cores.proxy, logFile: logFile(round), overrides: knobs.paveProxyEnv }),
      after: (round) => { rmSync(logFile(round), { force: true }); return {} }
    },
    {
      name: 'jwt caller (cached)',
      description: 'pave-proxy in gateway mode: one caller with an ES256 JWT from a JWKS file, the same token every request (verified once, then cached)',
      skipped: paveMissing,
      start: (round) => startPaveProxyGateway({ name: 'jwt caller (cached)', caller: 'jwt', dir: join(tmp, `gateway-jwt-${round}`), upstream: upstream.origin, cores: cores.proxy, logFile: logFile(round), overrides: knobs.paveProxyEnv }),
      after: (round) => { rmSync(logFile(round), { force: true }); return {} }
    },
    traced('pave-proxy-trace-off', 'parentbased_always_off', 'pave-proxy with tracing configured, sampler off (parentbased_always_off: the load sends no traceparent)'),
    traced('pave-proxy-trace-all', 'always_on', 'pave-proxy with tracing configured, every request sampled, OTLP/protobuf to a collector that takes everything'),
    {
      name: 'gateway + memory limits',
      description: 'pave-proxy as above, the default account with a limit nothing reaches, memory store (the cost of the limits stage)',
      skipped: paveMissing,
      start: (round) => startPaveProxy({ upstream: upstream.origin, cores: cores.proxy, logFile: logFile(round), env: { PAVE_PROXY_CONFIG: limitsConfigFile(join(tmp, `limits-memory-${round}`)) }, overrides: knobs.paveProxyEnv })
    },
    {
      name: 'gateway + Redis limits',
      description: 'the same on a local redis-server (one Lua script per request; the Redis process is not measured)',
      skipped: paveMissing ?? redisMissing(),
      start: async (round) => {
        const redis = await startBenchRedis(join(tmp, `limits-redis-${round}`), cores.upstream)
        try {
          const proxy = await startPaveProxy({ upstream: upstream.origin, cores: cores.proxy, logFile: logFile(round), env: { PAVE_PROXY_CONFIG: limitsConfigFile(join(tmp, `limits-redis-${round}`), redis.url) }, overrides: knobs.paveProxyEnv })
          return { ...proxy, name: 'gateway + Redis limits', stop: async () => { await proxy.stop(); await redis.child.stop() } }
        } catch (error) {
          await redis.child.stop()
          throw error
        }
      }
    }
  ]
  const wanted = knobs.contenders
  const contenders = all.filter((c) => c.name === 'direct' || wanted === undefined || wanted.includes(c.name))
  const skipped: Record<string, string> = {}
  for (const c of contenders) if (c.skipped !== undefined) skipped[c.name] = c.skipped
  if (paveMissing !== undefined) skippedTools.push(`pave-proxy skipped: ${paveMissing}`)

  const runs = new Map<string, RunFigures[]>()
  const failures = new Map<string, RunFailure[]>()
  const active = contenders.filter((c) => c.skipped === undefined)
  const began = performance.now()

  for (let round = 1; round <= knobs.runs; round++) {
    for (const contender of active) {
      const label = `round ${round}/${knobs.runs} ${contender.name}`
      let running: Running | undefined
      try {
        running = await contender.start(round)
        const startupMs = running.startupMs
        if (contender.name !== 'direct') {
          const problem = await checkSigning(running.origin, running.headers)
          if (problem !== undefined) throw new Error(problem)
        }
        await sleep(1_000)
        const rssRest = treeRss(running.pid)
        const anonRest = treeAnon(running.pid)
        const url = running.origin + BENCH_PATH
        if (knobs.warmup > 0) await load.run(url, knobs.connections, knobs.warmup, running.headers)
        const sampler = sampleRss(running.pid)
        const cpuBefore = treeCpuSeconds(running.pid)
        const loadResult = await load.run(url, knobs.connections, knobs.duration, running.headers)
        const cpuSeconds = treeCpuSeconds(running.pid) - cpuBefore
        const { rss: rssLoad, anon: anonLoad } = sampler.stopBoth()
        const latency = await load.latency(url, knobs.latencyDuration, running.headers)
        await running.stop()
        running = undefined
        const extra = contender.after?.(round)
        const figures: RunFigures = { round, startupMs, rssRest, anonRest, rssLoad, anonLoad, cpuUsPerRequest: (cpuSeconds * 1e6) / loadResult.requests, busy: cpuSeconds / loadResult.seconds, load: loadResult, latency, ...(extra !== undefined ? { extra } : {}) }
        runs.set(contender.name, [...(runs.get(contender.name) ?? []), figures])
        progress(`${label}: ${fmtInt(loadResult.rps)} req/s @${knobs.connections} (${loadResult.errors} errors, ${fmtUs(figures.cpuUsPerRequest)} CPU/req, core ${fmtFixed(figures.busy * 100, 0, ' %')} busy), p50 ${fmtUs(latency.latencyUs.p50)} p99 ${fmtUs(latency.latencyUs.p99)} @1, RSS ${fmtMB(rssRest)} → ${fmtMB(rssLoad)}, start-up ${fmtFixed(figures.startupMs, 0, ' ms')}`)
      } catch (error) {
        const message = (error as Error).message
        failures.set(contender.name, [...(failures.get(contender.name) ?? []), { round, error: message }])
        progress(`${label}: FAILED: ${message}`)
        await running?.stop().catch(() => {})
        contender.after?.(round)
      }
    }
  }
  await stopAll()
  const traceExports = traceSink.exports()
  await traceSink.close()

  // Medians and the latency each contender adds to direct (paired by round).
  const directRuns = runs.get('direct') ?? []
  const directByRound = new Map(directRuns.map((r) => [r.round, r]))
  const summary: Record<string, Summary> = {}
  for (const contender of active) {
    const list = runs.get(contender.name) ?? []
    const added = (pick: (r: RunFigures) => number): number => median(list.map((r) => {
      const d = directByRound.get(r.round)
      return d === undefined ? Number.NaN : pick(r) - pick(d)
    }))
    summary[contender.name] = {
      runs: list.length,
      rps: median(list.map((r) => r.load.rps)),
      p50Us: median(list.map((r) => r.latency.latencyUs.p50)),
      p99Us: median(list.map((r) => r.latency.latencyUs.p99)),
      addedP50Us: contender.name === 'direct' ? 0 : added((r) => r.latency.latencyUs.p50),
      addedP99Us: contender.name === 'direct' ? 0 : added((r) => r.latency.latencyUs.p99),
      rssRest: median(list.map((r) => r.rssRest)),
      anonRest: median(list.map((r) => r.anonRest)),
      rssLoad: median(list.map((r) => r.rssLoad)),
      anonLoad: median(list.map((r) => r.anonLoad)),
      cpuUsPerRequest: median(list.map((r) => r.cpuUsPerRequest)),
      busy: median(list.map((r) => r.busy)),
      startupMs: median(list.map((r) => r.startupMs)),
      errors: list.reduce((n, r) => n + r.load.errors + r.latency.errors, 0)
    }
  }

  const floor = summary.floor
  const rows = active.map((c) => {
    const s = summary[c.name] as Summary
    return [
      c.name,
      fmtInt(s.rps),
      floor !== undefined ? fmtRatio(s.rps / floor.rps) : '—',
      fmtUs(s.cpuUsPerRequest),
      fmtFixed(s.busy * 100, 0, ' %'),
      fmtUs(s.p50Us),
      fmtUs(s.p99Us),
      c.name === 'direct' ? '—' : fmtUs(s.addedP50Us),
      c.name === 'direct' ? '—' : fmtUs(s.addedP99Us),
      fmtMB(s.rssRest),
      fmtMB(s.anonRest),
      fmtMB(s.rssLoad),
      fmtMB(s.anonLoad),
      fmtFixed(s.startupMs, 0, ' ms'),
      `${s.errors}${failures.has(c.name) ? ` (${failures.get(c.name)?.length ?? 0} failed rounds)` : ''}`
    ]
  })
  const table = renderTable(
    ['contender', `req/s @${knobs.connections}`, '× floor', 'CPU/req', 'core busy', 'p50 @1', 'p99 @1', 'added p50', 'added p99', 'RSS rest', '(anon)', `RSS @${knobs.connections}`, '(anon)', 'start-up', 'errors'],
    rows,
    [false, true, true, true, true, true, true, true, true, true, true, true, true, true, true]
  )
  const targets = evaluateTargets(summary)

  const lines = [
    '',
    `pave-proxy bench — ${new Date().toISOString()}`,
    `pave-proxy ${ctx.revision}; node ${ctx.machine.node}, ${ctx.machine.cpu}, ${ctx.machine.cores} cores; ${cores.description}`,
    loadNote(ctx),
    ...(Object.keys(knobs.paveProxyEnv).length > 0 ? [`NOT THE DEFAULTS: pave-proxy ran with BENCH_PAVE_PROXY_ENV ${Object.entries(knobs.paveProxyEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
    `upstream: ${upstreamKind}; load: ${load.name}`,
    `${knobs.runs} rounds × (${knobs.warmup} s warm-up + ${knobs.duration} s at ${knobs.connections} connections + ${knobs.latencyDuration} s at 1 connection) per contender; medians; MB = 10^6 bytes; (anon) = the private part of RSS, without the binary's shared file pages`,
    ...skippedTools.map((s) => `skipped: ${s}`),
    '',
    table,
    '',
    ...active.map((c) => `- ${c.name}: ${c.description}`),
    ...logNote(runs.get('pave-proxy') ?? []),
    ...[...failures].flatMap(([name, list]) => list.map((f) => `- ${name} round ${f.round} failed: ${f.error}`)),
    '',
    'Targets (issue 7; the streaming and sidecar-gain targets are in `npm run bench:stream`):',
    '',
    renderTargets(targets),
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')

  const report = {
    kind: 'pave-proxy bench',
    generatedAt: new Date().toISOString(),
    elapsedSeconds: Math.round((performance.now() - began) / 1000),
    revision: ctx.revision,
    machine: ctx.machine,
    load: loadNote(ctx),
    cores: cores.description,
    knobs,
    upstream: upstreamKind,
    loadGenerator: load.name,
    skipped: { ...skipped, tools: skippedTools },
    traceExports,
    summary,
    targets,
    runs: Object.fromEntries(runs),
    failures: Object.fromEntries(failures),
    table
  }
  progress(`wrote ${writeResult('latest.json', report)} (${report.elapsedSeconds} s)`)
  await upstream.stop()
  await verifier.stop()
}

/** Shows that pave-proxy really logged: lines and bytes written per round. */
function logNote (list: readonly RunFigures[]): string[] {
  const lines = median(list.map((r) => r.extra?.logLines ?? Number.NaN))
  const bytes = median(list.map((r) => r.extra?.logBytes ?? Number.NaN))
  if (!Number.isFinite(lines)) return []
  return [`- pave-proxy's log: ${fmtInt(lines)} lines (${fmtMB(bytes)}) per round, median; about ${fmtInt(bytes / Math.max(1, lines))} bytes per line`]
}

interface Summary {
  runs: number
  rps: number
  p50Us: number
  p99Us: number
  addedP50Us: number
  addedP99Us: number
  rssRest: number
  anonRest: number
  rssLoad: number
  anonLoad: number
  cpuUsPerRequest: number
  busy: number
  startupMs: number
  errors: number
}

function evaluateTargets (s: Record<string, Summary>): Target[] {
  const pave = s['pave-proxy']
  const floor = s.floor
  const hp = s['http-proxy']
  const ok = (value: number, test: (v: number) => boolean): boolean | undefined => (Number.isFinite(value) ? test(value) : undefined)
  const na = 'not measured'
  const targets: Target[] = []
  const rpsFloor = pave !== undefined && floor !== undefined ? pave.rps / floor.rps : Number.NaN
  // The same ratio from CPU time per request: what it would be on cores of their own, whatever else ran.
  const byCpu = (other: Summary | undefined): string => pave !== undefined && other !== undefined && Number.isFinite(other.cpuUsPerRequest / pave.cpuUsPerRequest) ? `; by CPU per request ${fmtRatio(other.cpuUsPerRequest / pave.cpuUsPerRequest)}` : ''
  targets.push({ target: 'pave-proxy req/s ≥ 0.95 × floor', measured: Number.isFinite(rpsFloor) ? `${fmtRatio(rpsFloor)} (${fmtInt(pave?.rps ?? NaN)} vs ${fmtInt(floor?.rps ?? NaN)}${byCpu(floor)})` : na, met: ok(rpsFloor, (v) => v >= 0.95) })
  const rpsHp = pave !== undefined && hp !== undefined ? pave.rps / hp.rps : Number.NaN
  targets.push({ target: 'pave-proxy req/s ≥ 1.2 × http-proxy', measured: Number.isFinite(rpsHp) ? `${fmtRatio(rpsHp)} (${fmtInt(pave?.rps ?? NaN)} vs ${fmtInt(hp?.rps ?? NaN)}${byCpu(hp)})` : na, met: ok(rpsHp, (v) => v >= 1.2) })
  const p50 = pave !== undefined && floor !== undefined ? pave.addedP50Us / floor.addedP50Us : Number.NaN
  targets.push({ target: 'added latency p50 @1 ≤ 1.2 × floor\'s', measured: Number.isFinite(p50) ? `${fmtRatio(p50)} (${fmtUs(pave?.addedP50Us ?? NaN)} vs ${fmtUs(floor?.addedP50Us ?? NaN)})` : na, met: ok(p50, (v) => v <= 1.2) })
  const p99 = pave !== undefined && floor !== undefined ? pave.addedP99Us / floor.addedP99Us : Number.NaN
  targets.push({ target: 'added latency p99 @1 ≤ 2 × floor\'s', measured: Number.isFinite(p99) ? `${fmtRatio(p99)} (${fmtUs(pave?.addedP99Us ?? NaN)} vs ${fmtUs(floor?.addedP99Us ?? NaN)})` : na, met: ok(p99, (v) => v <= 2) })
  const rest = pave?.rssRest ?? Number.NaN
  targets.push({ target: 'pave-proxy RSS at rest ≤ 60 MB', measured: Number.isFinite(rest) ? fmtMB(rest) : na, met: ok(rest, (v) => v <= 60 * MB) })
  const loaded = pave?.rssLoad ?? Number.NaN
  targets.push({ target: `pave-proxy RSS under ${knobs.connections} connections ≤ 120 MB`, measured: Number.isFinite(loaded) ? fmtMB(loaded) : na, met: ok(loaded, (v) => v <= 120 * MB) })
  const startup = pave?.startupMs ?? Number.NaN
  const traceOff = s['pave-proxy-trace-off']
  const traceOffRatio = (traceOff?.rps ?? NaN) / (pave?.rps ?? NaN)
  targets.push({ target: 'tracing with the sampler off req/s ≥ 0.97 × pave-proxy (issue 14)', measured: Number.isFinite(traceOffRatio) ? `${fmtRatio(traceOffRatio)} (${fmtInt(traceOff?.rps ?? NaN)} vs ${fmtInt(pave?.rps ?? NaN)})` : na, met: ok(traceOffRatio, (v) => v >= 0.97) })
  targets.push({ target: 'pave-proxy start-up to first served request ≤ 500 ms', measured: Number.isFinite(startup) ? fmtFixed(startup, 0, ' ms') : na, met: ok(startup, (v) => v <= 500) })
  return targets
}

main().catch(async (error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`)
  await stopAll()
  process.exit(1)
})
