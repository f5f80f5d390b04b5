/**
 * Where pave-proxy's time and memory go: `npx tsx bench/profile.ts [load|startup|upload] [variant]`
 * (after `npm run build`). `variant` is a row of bench/lib/variants.ts (default
 * `pave-proxy`, the production defaults; e.g. `bare` or `+access-line` to explain a
 * line of the price list); BENCH_NODE picks the node binary.
 *
 * - `load` (default): pave-proxy (dist/main.js, production defaults) pinned like in
 *   the bench, under BENCH_CONNECTIONS connections for BENCH_DURATION seconds, with
 *   `--cpu-prof`; then its self time by package and its top functions, and a memory
 *   breakdown (process.memoryUsage) at rest and after the load.
 * - `startup`: `--cpu-prof` from spawn to the first served request.
 * - `upload`: uploads of 256 MiB, 1 GiB and 4 GiB, each through a fresh pave-proxy:
 *   RSS growth beside the peaks of process.memoryUsage() (no profiler), to tell
 *   buffering (grows with the size) from garbage awaiting collection (does not).
 * The raw profile is kept as bench/results/profile-<mode>.cpuprofile.json (open it
 * in Chrome DevTools → Performance, or speedscope).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { setUp, progress } from './lib/setup.js'
import { freePort, sleep, stopAll, which, waitServed, treeRss } from './lib/proc.js'
import { findNginx, startNginx, upstreamConfig } from './lib/nginx.js'
import { autocannonGenerator, wrkGenerator } from './lib/load.js'
import { paveProxyMissing, startBenchServer, startNodeUpstream, startPaveProxy, startTraceSink, type Running } from './lib/contenders.js'
import { startBenchRedis } from './lib/limits.js'
import { REPO_ROOT } from './lib/compile.js'
import { upload } from './lib/transfer.js'
import { fmtInt, fmtMB, renderTable } from './lib/table.js'
import { BENCH_PATH } from './lib/fixture.js'
import { PAVE_VARIANTS, type PaveVariant } from './lib/variants.js'

const ctx = setUp()
const { knobs, cores, tmp } = ctx
const mode = process.argv[2] === 'startup' ? 'startup' : process.argv[2] === 'upload' ? 'upload' : 'load'
const variantName = process.argv[3] ?? 'pave-proxy'
/** The reference servers can be profiled too, to compare a line of pave-proxy's profile with theirs. */
const REFERENCES: Record<string, string> = { floor: 'bench/floor.ts', 'fastify-floor': 'bench/fastify-floor.ts' }
const found = REFERENCES[variantName] !== undefined ? { name: variantName, description: REFERENCES[variantName], group: 'main' as const } : PAVE_VARIANTS.find((v) => v.name === variantName)
if (found === undefined) throw new Error(`no variant ${variantName} in bench/lib/variants.ts (${PAVE_VARIANTS.map((v) => v.name).join(', ')}) and not ${Object.keys(REFERENCES).join(' or ')}`)
const variant: PaveVariant = found

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }
  hitCount?: number
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** A package name for a script URL: `fastify`, `@fastify/reply-from`, `pave-proxy dist/proxy.js`, `node:internal/...`. */
function owner (url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1] ?? ''}` : rest[0] ?? url
  }
  if (url.startsWith('node:')) {
    const parts = url.split('/')
    return parts.length > 2 ? `${parts[0] ?? ''}/${parts[1] ?? ''}/${parts[2] ?? ''}`.replace(/\.js$/, '') : url
  }
  const dist = url.indexOf('/dist/')
  if (dist !== -1) return `pave-proxy ${url.slice(dist + 1)}`
  return url.replace(/^file:\/\//, '')
}

function analyse (profile: CpuProfile): string {
  // Self time per node from the sample deltas (more exact than hitCount × interval).
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const idle = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((a, n) => a + (self.get(n.id) ?? 0), 0)
  const busy = total - idle
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (const node of profile.nodes) {
    const t = self.get(node.id) ?? 0
    if (t === 0 || node.callFrame.functionName === '(idle)') continue
    const o = owner(node.callFrame.url, node.callFrame.functionName)
    byOwner.set(o, (byOwner.get(o) ?? 0) + t)
    const file = node.callFrame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')
    const key = `${node.callFrame.functionName || '(anonymous)'} ${file}${file !== '' ? `:${node.callFrame.lineNumber + 1}` : ''}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + t)
  }
  // Inclusive: time with at least one frame of the package on the stack.
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const nodeById = new Map(profile.nodes.map((n) => [n.id, n]))
  const ownersOf = new Map<number, Set<string>>()
  const stackOwners = (id: number): Set<string> => {
    const known = ownersOf.get(id)
    if (known !== undefined) return known
    const node = nodeById.get(id)
    const up = parent.get(id)
    const set = new Set(up !== undefined ? stackOwners(up) : [])
    if (node !== undefined && node.callFrame.url !== '') set.add(owner(node.callFrame.url, node.callFrame.functionName))
    ownersOf.set(id, set)
    return set
  }
  const inclusive = new Map<string, number>()
  for (const [id, t] of self) {
    const node = nodeById.get(id)
    if (node === undefined || node.callFrame.functionName === '(idle)') continue
    for (const o of stackOwners(id)) inclusive.set(o, (inclusive.get(o) ?? 0) + t)
  }
  // Who pays for the hottest native frames: the nearest caller outside Node's own modules.
  const nativeCallers = new Map<string, Map<string, number>>()
  const hotNatives = [...byFunction].filter(([k]) => !k.includes(' ') || k.endsWith(' ')).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k]) => k.trim())
  for (const [id, t] of self) {
    const node = nodeById.get(id)
    if (node === undefined || node.callFrame.url !== '' || !hotNatives.includes(node.callFrame.functionName)) continue
    let up = parent.get(id)
    let caller = '(none)'
    while (up !== undefined) {
      const frame = nodeById.get(up)?.callFrame
      if (frame !== undefined && frame.url !== '' && !frame.url.startsWith('node:')) {
        caller = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${frame.lineNumber + 1}`
        break
      }
      up = parent.get(up)
    }
    const callers = nativeCallers.get(node.callFrame.functionName) ?? new Map<string, number>()
    callers.set(caller, (callers.get(caller) ?? 0) + t)
    nativeCallers.set(node.callFrame.functionName, callers)
  }
  const pct = (t: number): string => `${((100 * t) / busy).toFixed(1)} %`
  const ms = (t: number): string => `${fmtInt(t / 1000)} ms`
  const top = (map: Map<string, number>, n: number): string[][] => [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, t]) => [k, ms(t), pct(t)])
  return [
    `profile: ${ms(total)} sampled, ${ms(busy)} busy (${((100 * busy) / total).toFixed(0)} % of the wall time on the proxy's core)`,
    '',
    'self time by package (share of busy time):',
    '',
    renderTable(['package / area', 'self', 'share'], top(byOwner, 25), [false, true, true]),
    '',
    'inclusive time by package (a frame of it anywhere on the stack):',
    '',
    renderTable(['package / area', 'inclusive', 'share'], top(inclusive, 25), [false, true, true]),
    '',
    'top functions by self time:',
    '',
    renderTable(['function', 'self', 'share'], top(byFunction, 40), [false, true, true]),
    '',
    'the hottest native frames, by their nearest caller outside Node\'s own modules:',
    '',
    renderTable(['native frame ← caller', 'self', 'share'], [...nativeCallers].flatMap(([fn, callers]) => top(callers, 4).map(([c, t, p]) => [`${fn} ← ${c ?? ''}`, t ?? '', p ?? '']))
      .sort((a, b) => Number((b[1] ?? '').replace(/[^0-9]/g, '')) - Number((a[1] ?? '').replace(/[^0-9]/g, ''))), [false, true, true])
  ].join('\n')
}

/** A preload that answers SIGWINCH (close-with-grace stops on SIGUSR2; SIGUSR1 would open the inspector) with process.memoryUsage() in a file. */
function memoryPreload (dir: string): string {
  const file = join(dir, 'memory-preload.mjs')
  writeFileSync(file, `import { writeFileSync } from 'node:fs'
process.on('SIGWINCH', () => {
  writeFileSync(${JSON.stringify(join(dir, 'memory.json'))}, JSON.stringify(process.memoryUsage()))
})
`)
  return file
}

async function memoryOf (running: Running, dir: string): Promise<Record<string, number>> {
  process.kill(running.pid, 'SIGWINCH')
  await sleep(300)
  return JSON.parse(readFileSync(join(dir, 'memory.json'), 'utf8')) as Record<string, number>
}

/** A preload that keeps the peaks of process.memoryUsage() (sampled every 20 ms) in a file. */
function peakPreload (dir: string): string {
  const file = join(dir, 'peak-preload.mjs')
  writeFileSync(file, `import { writeFileSync } from 'node:fs'
const peak = {}
setInterval(() => {
  const m = process.memoryUsage()
  for (const k in m) peak[k] = Math.max(peak[k] ?? 0, m[k])
  writeFileSync(${JSON.stringify(join(dir, 'peak.json'))}, JSON.stringify(peak))
}, 20).unref()
`)
  return file
}

async function readPeak (): Promise<Record<string, number>> {
  for (let i = 0; i < 10; i++) {
    try {
      return JSON.parse(readFileSync(join(tmp, 'peak.json'), 'utf8')) as Record<string, number>
    } catch {
      await sleep(30) // being rewritten
    }
  }
  throw new Error('cannot read the memory peaks')
}

async function uploads (upstream: string): Promise<void> {
  const rows: string[][] = []
  for (const bytes of [256 * 1024 ** 2, 1024 ** 3, 4 * 1024 ** 3]) {
    const pave = await startPaveProxy({
      upstream,
      cores: cores.proxy,
      logFile: join(tmp, 'pave-proxy.log'),
      env: { PAVE_PROXY_BODY_LIMIT: String(8 * 1024 ** 3) },
      nodeFlags: [`--import=${peakPreload(tmp)}`],
      overrides: knobs.paveProxyEnv
    })
    await sleep(500)
    const before = await readPeak()
    const transfer = await upload(pave.origin, bytes, pave.pid)
    await sleep(100)
    const peak = await readPeak()
    await pave.stop()
    const grew = (k: string): string => `+${fmtMB((peak[k] ?? 0) - (before[k] ?? 0))}`
    rows.push([`${bytes / 1024 ** 2} MiB`, `${fmtInt(transfer.throughput)} MB/s`, `+${fmtMB(transfer.growth)}`, grew('heapTotal'), grew('external'), grew('arrayBuffers')])
    progress(`upload of ${bytes / 1024 ** 2} MiB done`)
  }
  process.stdout.write([
    'pave-proxy, one upload per fresh process; peaks of process.memoryUsage() minus their values at rest:',
    '',
    renderTable(['upload', 'throughput', 'RSS growth', 'heapTotal', 'external', 'arrayBuffers'], rows, [false, true, true, true, true, true]),
    ''
  ].join('\n') + '\n')
}

async function main (): Promise<void> {
  const missing = paveProxyMissing()
  if (missing !== undefined) throw new Error(missing)
  if (mode === 'upload') {
    const upstream = await startNodeUpstream(cores.upstream)
    await uploads(upstream.origin)
    await stopAll()
    return
  }
  const nginx = knobs.useNginx ? findNginx() : 'BENCH_NGINX=0'
  const verifier = await startNodeUpstream(cores.upstream)
  let upstreamOrigin = verifier.origin
  if (typeof nginx !== 'string') {
    const dir = join(tmp, 'nginx-upstream')
    const port = await freePort()
    const child = startNginx('nginx upstream', nginx, dir, upstreamConfig(dir, port, Number(new URL(verifier.origin).port)), cores.upstream)
    await waitServed(child, `http://127.0.0.1:${port}${BENCH_PATH}`, performance.now())
    upstreamOrigin = `http://127.0.0.1:${port}`
  }
  const profDir = join(tmp, 'prof')
  mkdirSync(profDir, { recursive: true })
  const nodeFlags = ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=200', `--import=${memoryPreload(tmp)}`]
  // Started only when the variant asks for it, as in the bench.
  let sink: Awaited<ReturnType<typeof startTraceSink>> | undefined
  const prepared = await variant.prepare?.({
    dir: join(tmp, 'variant'),
    redisUrl: async () => (await startBenchRedis(join(tmp, 'redis'), cores.upstream)).url,
    traceSinkUrl: async () => (sink ??= await startTraceSink()).url
  })
  const reference = REFERENCES[variant.name]
  const pave = reference !== undefined ? await startBenchServer(variant.name, reference, upstreamOrigin, cores.proxy, knobs.node, nodeFlags) : await startPaveProxy({
    name: variant.name,
    upstream: upstreamOrigin,
    cores: cores.proxy,
    logFile: join(tmp, 'pave-proxy.log'),
    nodeFlags,
    node: knobs.node,
    env: { ...variant.env, ...prepared?.env },
    ...(prepared?.headers !== undefined ? { headers: prepared.headers } : {}),
    ...(variant.leaveOut !== undefined ? { leaveOut: variant.leaveOut } : {}),
    overrides: knobs.paveProxyEnv
  })
  progress(`pave-proxy served its first request ${pave.startupMs.toFixed(0)} ms after spawn (with the profiler on)`)
  const lines: string[] = []
  if (mode === 'load') {
    await sleep(1_000)
    const rest = await memoryOf(pave, tmp)
    const restRss = treeRss(pave.pid)
    const wrk = knobs.useWrk ? which('wrk') : undefined
    const load = wrk !== undefined ? wrkGenerator(wrk, cores.load, 1) : autocannonGenerator(cores.load)
    const result = await load.run(pave.origin + BENCH_PATH, knobs.connections, knobs.duration, pave.headers)
    const loaded = await memoryOf(pave, tmp)
    const loadedRss = treeRss(pave.pid)
    lines.push(`${fmtInt(result.rps)} req/s at ${knobs.connections} connections for ${knobs.duration} s with the profiler on (${result.errors} errors)`, '')
    const keys = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers']
    lines.push(renderTable(['memory', 'at rest', 'after the load'], [
      ...keys.map((k) => [k, fmtMB(rest[k] ?? Number.NaN), fmtMB(loaded[k] ?? Number.NaN)]),
      ['RSS (/proc)', fmtMB(restRss), fmtMB(loadedRss)]
    ], [false, true, true]), '')
  }
  await pave.stop()
  await sink?.close()
  await stopAll()
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error('no profile was written')
  const suffix = variant.name === 'pave-proxy' ? '' : `-${variant.name.replace(/[^a-z0-9-]/gi, '')}`
  const kept = join(REPO_ROOT, 'bench', 'results', `profile-${mode}${suffix}.cpuprofile.json`)
  copyFileSync(join(profDir, file), kept)
  lines.push(analyse(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile))
  process.stdout.write(`${variant.name} on node ${knobs.node === process.execPath ? process.version : knobs.node}\n` + lines.join('\n') + `\n\nprofile kept as ${kept.slice(REPO_ROOT.length)}\n`)
}

main().catch(async (error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`)
  await stopAll()
  process.exit(1)
})
