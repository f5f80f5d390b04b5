/**
 * `npm run bench`: pave-proxy against the cheapest alternatives, on loopback.
 *
 * Contenders, each in front of the same fast upstream and adding the same three
 * PAVE headers: direct (the upstream alone), floor (node:http + undici Pool),
 * fastify-floor (Fastify 5 + undici Pool, one catch-all route, reply.hijack()),
 * http-proxy, nginx (njs signs; only when installed), pave-proxy (dist/main.js,
 * production defaults) and the other variants of bench/lib/variants.ts, among them
 * the price list (each optional stage switched on alone). Rounds are interleaved:
 * every round starts each contender afresh, in turn, and measures start-up, RSS at
 * rest, CPU per request (from /proc), requests/s and RSS under BENCH_CONNECTIONS
 * connections, latency with one connection. Ratios to the floor are taken per
 * round, then the median over rounds. Node contenders run on BENCH_NODE.
 * Prints the tables and the targets of issue 15; writes bench/results/latest.json.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { loadNote, setUp, progress, writeResult } from './lib/setup.js'
import { freePort, sleep, stopAll, treeAnon, treeCpuSeconds, treeRss, sampleRss, which, waitServed } from './lib/proc.js'
import { findNginx, upstreamConfig, startNginx, errorLogTail, type NginxInstall } from './lib/nginx.js'
import { autocannonGenerator, wrkGenerator, type LoadGenerator, type LoadResult } from './lib/load.js'
import {
  checkSigning, paveProxyMissing, startFastifyFloor, startFloor, startHttpProxy, startNginxProxy, startNodeUpstream, startPaveProxy, startTraceSink, type Running
} from './lib/contenders.js'
import { PAVE_VARIANTS, type PaveVariant, type PrepareContext } from './lib/variants.js'
import { startBenchRedis } from './lib/limits.js'
import { median } from './lib/stats.js'
import { fmtFixed, fmtInt, fmtMB, fmtRatio, fmtUs, MB, renderTable, renderTargets, type Target } from './lib/table.js'
import { BENCH_PATH } from './lib/fixture.js'

const ctx = setUp()
const { knobs, cores, tmp } = ctx

interface Contender {
  readonly name: string
  readonly description: string
  /** `reference`: direct, floors, other proxies; `main`/`price`: pave-proxy variants. */
  readonly group: 'reference' | 'main' | 'price'
  readonly skipped: string | undefined
  /** Whether the 1-connection latency run is measured. */
  readonly latency: boolean
  readonly variant?: PaveVariant
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
  latency: LoadResult | undefined
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
  const nodeVersion = versionOf(knobs.node)

  // Load generator.
  const wrk = knobs.useWrk ? which('wrk') : undefined
  if (wrk === undefined) skippedTools.push(knobs.useWrk ? 'wrk is not installed: autocannon measures throughput, a sequential Node client the 1-connection latency' : 'BENCH_WRK=0: autocannon and a sequential Node client instead of wrk')
  const load: LoadGenerator = wrk !== undefined ? wrkGenerator(wrk, cores.load, threadsFor(cores.load)) : autocannonGenerator(cores.load)
  if (cores.proxy === undefined) skippedTools.push(`pinning: ${cores.description}`)

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
  progress(`cores: ${cores.description}; contenders on node ${nodeVersion} (${knobs.node})`)
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

  // Shared servers some variants need, started the first time one asks: a Redis (on the
  // upstream's core, so its CPU is not the contender's) and a trace collector (in this process).
  let redis: Promise<Awaited<ReturnType<typeof startBenchRedis>>> | undefined
  let traceSink: Promise<Awaited<ReturnType<typeof startTraceSink>>> | undefined
  const prepareContext = (dir: string): PrepareContext => ({
    dir,
    redisUrl: async () => (await (redis ??= startBenchRedis(join(tmp, 'redis'), cores.upstream))).url,
    traceSinkUrl: async () => (await (traceSink ??= startTraceSink())).url
  })

  const paveMissing = paveProxyMissing()
  const node = knobs.node
  const logFile = (name: string, round: number): string => join(tmp, `${name.replace(/[^a-z0-9-]/gi, '_')}-${round}.log`)
  const reference = (name: string, description: string, start: Contender['start'], skipped?: string): Contender =>
    ({ name, description, group: 'reference', skipped, latency: true, start })
  const all: Contender[] = [
    { ...reference('direct', 'the upstream alone: the limit no proxy can beat', async () => ({ ...upstream, name: 'direct', startupMs: Number.NaN, stop: async () => {} })) },
    reference('floor', 'node:http + undici Pool.stream(), no framework, no logging (bench/floor.ts)', () => startFloor(upstream.origin, cores.proxy, node)),
    reference('fastify-floor', 'Fastify 5 + undici Pool.stream(), one catch-all route, reply.hijack(), no logging, no hooks (bench/fastify-floor.ts)', () => startFastifyFloor(upstream.origin, cores.proxy, node)),
    reference('http-proxy', 'the http-proxy package, keep-alive agent, headers set in proxyReq (bench/http-proxy.ts)', () => startHttpProxy(upstream.origin, cores.proxy, node)),
    reference('nginx', 'nginx, 1 worker, keep-alive upstream pool, njs computes the HMAC per request, no access log', (round) => startNginxProxy(nginx as NginxInstall, join(tmp, `nginx-proxy-${round}`), upstreamPort, cores.proxy), nginxSkip),
    ...PAVE_VARIANTS.flatMap((variant) => knobs.compareDist === undefined ? [{ variant, dist: undefined }] : [{ variant, dist: undefined }, { variant, dist: knobs.compareDist }]).map(({ variant, dist }): Contender => ({
      name: dist === undefined ? variant.name : `${variant.name}@B`,
      description: variant.description,
      group: variant.group,
      variant,
      latency: variant.latency ?? variant.group === 'main',
      skipped: paveMissing ?? variant.skip?.(),
      start: async (round) => {
        const name = dist === undefined ? variant.name : `${variant.name}@B`
        const dir = join(tmp, `${name.replace(/[^a-z0-9-]/gi, '_')}-${round}`)
        mkdirSync(dir, { recursive: true })
        const prepared = await variant.prepare?.(prepareContext(dir))
        const env: Record<string, string> = { ...variant.env, ...prepared?.env }
        return await startPaveProxy({ name, upstream: upstream.origin, cores: cores.proxy, logFile: logFile(name, round), env, overrides: knobs.paveProxyEnv, node, ...(prepared?.headers !== undefined ? { headers: prepared.headers } : {}), ...(variant.leaveOut !== undefined ? { leaveOut: variant.leaveOut } : {}), ...(dist !== undefined ? { dist } : {}) })
      },
      after: (round): Record<string, number> => {
        const file = logFile(dist === undefined ? variant.name : `${variant.name}@B`, round)
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
    }))
  ]
  // direct and floor always run: every ratio is to the floor of the same round.
  const wanted = knobs.contenders
  const contenders = all.filter((c) => c.name === 'direct' || c.name === 'floor' || wanted === undefined || wanted.includes(c.name.replace(/@B$/, '')) || wanted.includes(c.group))
  const skipped: Record<string, string> = {}
  for (const c of contenders) if (c.skipped !== undefined) skipped[c.name] = c.skipped
  if (paveMissing !== undefined) skippedTools.push(`pave-proxy skipped: ${paveMissing}`)
  for (const c of contenders) if (c.skipped !== undefined && c.group !== 'reference' && paveMissing === undefined) skippedTools.push(`${c.name} skipped: ${c.skipped}`)
  if (!knobs.latency) skippedTools.push('BENCH_LATENCY=0: no 1-connection latency runs')

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
        const headers = running.headers ?? {}
        if (knobs.warmup > 0) await load.run(url, knobs.connections, knobs.warmup, headers)
        const sampler = sampleRss(running.pid)
        const cpuBefore = treeCpuSeconds(running.pid)
        const loadResult = await load.run(url, knobs.connections, knobs.duration, headers)
        const cpuSeconds = treeCpuSeconds(running.pid) - cpuBefore
        const { rss: rssLoad, anon: anonLoad } = sampler.stopBoth()
        const latency = knobs.latency && contender.latency ? await load.latency(url, knobs.latencyDuration, headers) : undefined
        await running.stop()
        running = undefined
        const extra = contender.after?.(round)
        const figures: RunFigures = { round, startupMs, rssRest, anonRest, rssLoad, anonLoad, cpuUsPerRequest: (cpuSeconds * 1e6) / loadResult.requests, busy: cpuSeconds / loadResult.seconds, load: loadResult, latency, ...(extra !== undefined ? { extra } : {}) }
        runs.set(contender.name, [...(runs.get(contender.name) ?? []), figures])
        progress(`${label}: ${fmtInt(loadResult.rps)} req/s @${knobs.connections} (${loadResult.errors} errors, ${fmtFixed(figures.cpuUsPerRequest, 1, ' µs')} CPU/req, core ${fmtFixed(figures.busy * 100, 0, ' %')} busy)${latency !== undefined ? `, p50 ${fmtUs(latency.latencyUs.p50)} p99 ${fmtUs(latency.latencyUs.p99)} @1` : ''}, RSS ${fmtMB(rssRest)} → ${fmtMB(rssLoad)}, start-up ${fmtFixed(figures.startupMs, 0, ' ms')}; load ${loadavg()[0]?.toFixed(2) ?? '?'}`)
      } catch (error) {
        const message = (error as Error).message
        failures.set(contender.name, [...(failures.get(contender.name) ?? []), { round, error: message }])
        progress(`${label}: FAILED: ${message}`)
        await running?.stop().catch(() => {})
        contender.after?.(round)
      }
    }
  }
  if (traceSink !== undefined) await (await traceSink).close()
  if (redis !== undefined) await (await redis).child.stop()
  await stopAll()

  // Medians, and per-round pairings: latency added to direct's, ratios to the floor's, prices over bare's.
  const byRound = (name: string): Map<number, RunFigures> => new Map((runs.get(name) ?? []).map((r) => [r.round, r]))
  const directByRound = byRound('direct')
  const floorByRound = byRound('floor')
  const bareByRound = byRound('bare')
  const paired = (list: readonly RunFigures[], other: Map<number, RunFigures>, pick: (r: RunFigures) => number, combine: (a: number, b: number) => number): number =>
    median(list.map((r) => {
      const o = other.get(r.round)
      return o === undefined ? Number.NaN : combine(pick(r), pick(o))
    }))
  const minus = (a: number, b: number): number => a - b
  const ratio = (a: number, b: number): number => a / b
  const p50 = (r: RunFigures): number => r.latency?.latencyUs.p50 ?? Number.NaN
  const p99 = (r: RunFigures): number => r.latency?.latencyUs.p99 ?? Number.NaN
  const summary: Record<string, Summary> = {}
  for (const contender of active) {
    const list = runs.get(contender.name) ?? []
    const floorAdded = (pick: (r: RunFigures) => number): Map<number, number> => new Map([...floorByRound].map(([round, f]) => [round, pick(f) - pick(directByRound.get(round) ?? f)]))
    const floorAddedP50 = floorAdded(p50)
    const floorAddedP99 = floorAdded(p99)
    summary[contender.name] = {
      group: contender.group,
      runs: list.length,
      rps: median(list.map((r) => r.load.rps)),
      rpsRatio: paired(list, floorByRound, (r) => r.load.rps, ratio),
      cpuUsPerRequest: median(list.map((r) => r.cpuUsPerRequest)),
      cpuRatio: paired(list, floorByRound, (r) => r.cpuUsPerRequest, ratio),
      priceUs: contender.group === 'price' && contender.name !== 'bare' ? paired(list, contender.name.endsWith('@B') ? byRound('bare@B') : bareByRound, (r) => r.cpuUsPerRequest, minus) : Number.NaN,
      p50Us: median(list.map(p50)),
      p99Us: median(list.map(p99)),
      addedP50Us: contender.name === 'direct' ? 0 : paired(list, directByRound, p50, minus),
      addedP99Us: contender.name === 'direct' ? 0 : paired(list, directByRound, p99, minus),
      addedP50Ratio: median(list.map((r) => (p50(r) - p50(directByRound.get(r.round) ?? r)) / (floorAddedP50.get(r.round) ?? Number.NaN))),
      addedP99Ratio: median(list.map((r) => (p99(r) - p99(directByRound.get(r.round) ?? r)) / (floorAddedP99.get(r.round) ?? Number.NaN))),
      rssRest: median(list.map((r) => r.rssRest)),
      anonRest: median(list.map((r) => r.anonRest)),
      rssLoad: median(list.map((r) => r.rssLoad)),
      anonLoad: median(list.map((r) => r.anonLoad)),
      rssRestOverFloor: paired(list, floorByRound, (r) => r.rssRest, minus),
      rssLoadRatio: paired(list, floorByRound, (r) => r.rssLoad, ratio),
      busy: median(list.map((r) => r.busy)),
      startupMs: median(list.map((r) => r.startupMs)),
      errors: list.reduce((n, r) => n + r.load.errors + (r.latency?.errors ?? 0), 0)
    }
  }

  const mainRows = active.filter((c) => c.group !== 'price')
  const prices = active.filter((c) => c.group === 'price')
  const errorsCell = (c: Contender, s: Summary): string => `${s.errors}${failures.has(c.name) ? ` (${failures.get(c.name)?.length ?? 0} failed rounds)` : ''}`
  const table = renderTable(
    ['contender', `req/s @${knobs.connections}`, '× floor', 'CPU/req', '× floor', 'core busy', 'p50 @1', 'p99 @1', 'added p50', 'added p99', 'RSS rest', '(anon)', `RSS @${knobs.connections}`, '(anon)', 'start-up', 'errors'],
    mainRows.map((c) => {
      const s = summary[c.name] as Summary
      return [
        c.name, fmtInt(s.rps), fmtRatio(s.rpsRatio), fmtFixed(s.cpuUsPerRequest, 1, ' µs'), fmtRatio(s.cpuRatio), fmtFixed(s.busy * 100, 0, ' %'),
        fmtUs(s.p50Us), fmtUs(s.p99Us), c.name === 'direct' ? '—' : fmtUs(s.addedP50Us), c.name === 'direct' ? '—' : fmtUs(s.addedP99Us),
        fmtMB(s.rssRest), fmtMB(s.anonRest), fmtMB(s.rssLoad), fmtMB(s.anonLoad), fmtFixed(s.startupMs, 0, ' ms'), errorsCell(c, s)
      ]
    }),
    [false, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true]
  )
  const floorCpu = summary.floor?.cpuUsPerRequest ?? Number.NaN
  const priceTable = prices.length === 0
    ? undefined
    : renderTable(
      ['stage switched on alone', 'CPU/req', '× floor', 'price (µs/req over bare)', 'share of floor\'s CPU', `req/s @${knobs.connections}`, '× floor', 'errors'],
      prices.map((c) => {
        const s = summary[c.name] as Summary
        const base = c.name === 'bare' || c.name === 'bare@B'
        return [c.name, fmtFixed(s.cpuUsPerRequest, 1, ' µs'), fmtRatio(s.cpuRatio), base ? '—' : fmtFixed(s.priceUs, 1, ' µs'), base ? '—' : fmtFixed((100 * s.priceUs) / floorCpu, 0, ' %'), fmtInt(s.rps), fmtRatio(s.rpsRatio), errorsCell(c, s)]
      }),
      [false, true, true, true, true, true, true, true]
    )
  const targets = evaluateTargets(summary, active)

  const lines = [
    '',
    `pave-proxy bench — ${new Date().toISOString()}`,
    `pave-proxy ${ctx.revision}; contenders on node ${nodeVersion}${knobs.node !== process.execPath ? ` (${knobs.node})` : ''}, harness on ${ctx.machine.node}; ${ctx.machine.cpu}, ${ctx.machine.cores} cores; ${cores.description}`,
    loadNote(ctx),
    ...(knobs.compareDist !== undefined ? [`A/B: rows named <name>@B ran the build in ${knobs.compareDist}`] : []),
    ...(Object.keys(knobs.paveProxyEnv).length > 0 ? [`NOT THE DEFAULTS: pave-proxy ran with BENCH_PAVE_PROXY_ENV ${Object.entries(knobs.paveProxyEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
    `upstream: ${upstreamKind}; load: ${load.name}`,
    `${knobs.runs} interleaved rounds × (${knobs.warmup} s warm-up + ${knobs.duration} s at ${knobs.connections} connections${knobs.latency ? ` + ${knobs.latencyDuration} s at 1 connection` : ''}) per contender; × floor = median of the per-round ratios to the floor; other figures medians; CPU/req from /proc (user + system, all threads); MB = 10^6 bytes; (anon) = the private part of RSS`,
    ...skippedTools.map((s) => `skipped: ${s}`),
    '',
    table,
    '',
    ...mainRows.map((c) => `- ${c.name}: ${c.description}`),
    ...logNote(runs.get('pave-proxy') ?? []),
    ...(priceTable !== undefined
      ? ['', 'Price list (each optional stage switched on alone over `bare`; price = median over rounds of its CPU/req minus bare\'s in the same round):', '', priceTable, '', ...prices.map((c) => `- ${c.name}: ${c.description}`)]
      : []),
    ...[...failures].flatMap(([name, list]) => list.map((f) => `- ${name} round ${f.round} failed: ${f.error}`)),
    '',
    'Targets (issue 15; the streaming targets are in `npm run bench:stream`, the memory limit in `npm run soak`):',
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
    machine: { ...ctx.machine, contenderNode: nodeVersion, contenderNodePath: knobs.node },
    load: loadNote(ctx),
    cores: cores.description,
    knobs,
    upstream: upstreamKind,
    loadGenerator: load.name,
    skipped: { ...skipped, tools: skippedTools },
    summary,
    targets,
    runs: Object.fromEntries(runs),
    failures: Object.fromEntries(failures),
    table,
    priceTable
  }
  progress(`wrote ${writeResult(knobs.node === process.execPath ? 'latest.json' : `latest-node${nodeVersion.replace(/^v/, '').split('.')[0] ?? ''}.json`, report)} (${report.elapsedSeconds} s)`)
  await upstream.stop()
  await verifier.stop()
}

/** `node --version` of a binary. */
function versionOf (binary: string): string {
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8' })
  if (out.status !== 0) throw new Error(`BENCH_NODE=${binary}: cannot run it (${out.error?.message ?? out.stderr})`)
  return out.stdout.trim()
}

/** Shows that pave-proxy really logged: lines and bytes written per round. */
function logNote (list: readonly RunFigures[]): string[] {
  const lines = median(list.map((r) => r.extra?.logLines ?? Number.NaN))
  const bytes = median(list.map((r) => r.extra?.logBytes ?? Number.NaN))
  if (!Number.isFinite(lines)) return []
  return [`- pave-proxy's log: ${fmtInt(lines)} lines (${fmtMB(bytes)}) per round, median; about ${fmtInt(bytes / Math.max(1, lines))} bytes per line`]
}

interface Summary {
  group: Contender['group']
  runs: number
  rps: number
  /** Median over rounds of req/s ÷ the floor's req/s in the same round. */
  rpsRatio: number
  cpuUsPerRequest: number
  /** Median over rounds of CPU/req ÷ the floor's CPU/req in the same round. */
  cpuRatio: number
  /** Price list: median over rounds of CPU/req minus bare's in the same round. */
  priceUs: number
  p50Us: number
  p99Us: number
  addedP50Us: number
  addedP99Us: number
  /** Median over rounds of (added p50) ÷ (the floor's added p50). */
  addedP50Ratio: number
  addedP99Ratio: number
  rssRest: number
  anonRest: number
  rssLoad: number
  anonLoad: number
  /** Median over rounds of RSS at rest minus the floor's. */
  rssRestOverFloor: number
  /** Median over rounds of RSS under load ÷ the floor's. */
  rssLoadRatio: number
  busy: number
  startupMs: number
  errors: number
}

function evaluateTargets (s: Record<string, Summary>, active: readonly Contender[]): Target[] {
  const ok = (value: number, test: (v: number) => boolean): boolean | undefined => (Number.isFinite(value) ? test(value) : undefined)
  const na = 'not measured'
  const targets: Target[] = []
  for (const c of active) {
    const v = c.variant
    const figures = s[c.name]
    if (v === undefined || figures === undefined) continue
    if (v.minRpsRatio !== undefined) {
      targets.push({ target: `${c.name} req/s ≥ ${v.minRpsRatio} × floor`, measured: Number.isFinite(figures.rpsRatio) ? `${fmtRatio(figures.rpsRatio)} (${fmtInt(figures.rps)} vs ${fmtInt(s.floor?.rps ?? NaN)})` : na, met: ok(figures.rpsRatio, (x) => x >= (v.minRpsRatio as number)) })
    }
    if (v.maxCpuRatio !== undefined) {
      targets.push({ target: `${c.name} CPU per request ≤ ${v.maxCpuRatio} × floor`, measured: Number.isFinite(figures.cpuRatio) ? `${fmtRatio(figures.cpuRatio)} (${fmtFixed(figures.cpuUsPerRequest, 1, ' µs')} vs ${fmtFixed(s.floor?.cpuUsPerRequest ?? NaN, 1, ' µs')})` : na, met: ok(figures.cpuRatio, (x) => x <= (v.maxCpuRatio as number)) })
    }
  }
  const pave = s['pave-proxy']
  if (pave !== undefined) {
    targets.push({ target: 'pave-proxy added latency p50 @1 ≤ 1.1 × floor\'s', measured: Number.isFinite(pave.addedP50Ratio) ? `${fmtRatio(pave.addedP50Ratio)} (${fmtUs(pave.addedP50Us)} vs ${fmtUs(s.floor?.addedP50Us ?? NaN)})` : na, met: ok(pave.addedP50Ratio, (v) => v <= 1.1) })
    targets.push({ target: 'pave-proxy added latency p99 @1 ≤ 1.5 × floor\'s', measured: Number.isFinite(pave.addedP99Ratio) ? `${fmtRatio(pave.addedP99Ratio)} (${fmtUs(pave.addedP99Us)} vs ${fmtUs(s.floor?.addedP99Us ?? NaN)})` : na, met: ok(pave.addedP99Ratio, (v) => v <= 1.5) })
    targets.push({ target: 'pave-proxy RSS at rest ≤ floor + 8 MB', measured: Number.isFinite(pave.rssRestOverFloor) ? `${pave.rssRestOverFloor >= 0 ? '+' : ''}${fmtMB(pave.rssRestOverFloor)} (${fmtMB(pave.rssRest)} vs ${fmtMB(s.floor?.rssRest ?? NaN)})` : na, met: ok(pave.rssRestOverFloor, (v) => v <= 8 * MB) })
    targets.push({ target: `pave-proxy RSS under ${knobs.connections} connections ≤ 1.1 × floor's`, measured: Number.isFinite(pave.rssLoadRatio) ? `${fmtRatio(pave.rssLoadRatio)} (${fmtMB(pave.rssLoad)} vs ${fmtMB(s.floor?.rssLoad ?? NaN)})` : na, met: ok(pave.rssLoadRatio, (v) => v <= 1.1) })
  }
  return targets
}

main().catch(async (error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`)
  await stopAll()
  process.exit(1)
})
