/**
 * The soak: the real proxy process (dist/main.js, built by `npm run soak`) in
 * front of the PAVE mock, at a steady rate for a long time, with faults sprinkled
 * in (upstream resets, hangs, 503s and slow answers on chosen paths), callers
 * walking away mid-upload and mid-download, and bursts of ten times the pool.
 *
 * Passes when: no unexpected outcome (every answer is what its path should get,
 * none hangs past its deadline), the proxy's RSS stays within a band after the
 * warm-up and does not drift upwards, its file descriptors and sockets return to what the idle process held
 * before any traffic once traffic stops, and its output holds neither the secret nor any minted token.
 *
 * Knobs (environment): SOAK_DURATION_S (600), SOAK_RATE requests/s (200),
 * SOAK_ABORTS callers who leave (10000), SOAK_RSS_BAND_MIB (64: highest minus
 * lowest sample after the warm-up, bursts and collections included),
 * SOAK_RSS_DRIFT_MIB (16: median of the last third minus that of the first), SOAK_REPORT
 * (a path for the JSON report). Exit 0 on pass, 1 on failure.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, existsSync, readdirSync, readFileSync, readlinkSync, mkdtempSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { startPaveMock } from '../../src/mock/server.js'
import { kubernetesObjects, only, proxyContainers, quantity, readDockerfile, type Deployment } from '../deploy/manifests.js'
import type { FaultRule } from '../../src/mock/faults.js'

const knob = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`)
  return value
}
const DURATION_S = knob('SOAK_DURATION_S', 600)
const RATE = knob('SOAK_RATE', 200)
const ABORTS = knob('SOAK_ABORTS', 10_000)
const RSS_BAND_MIB = knob('SOAK_RSS_BAND_MIB', 64)
const RSS_DRIFT_MIB = knob('SOAK_RSS_DRIFT_MIB', 16)
const WARMUP_S = Math.min(60, Math.max(5, DURATION_S / 10))
const POOL = 16
const UPSTREAM_TIMEOUT_MS = 1_500
const DEADLINE_MS = 15_000
const MiB = 1024 * 1024

const ACCOUNT = { username: 'soak-user', apiKey: 'soak-key-not-real', secret: 'soak-secret-not-real-0123456789' }
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Paths with a fault, what each must produce, and how often they are asked for (per 1000). */
const FAULTS: Array<{ key: string, rule: Omit<FaultRule, 'path'>, expect: Expect, perMille: number }> = [
  { key: 'FAULT-RESET-BEFORE', rule: { reset: 'before-headers' }, expect: { status: 502, code: 'PAVE_PROXY_UPSTREAM_UNREACHABLE' }, perMille: 15 },
  { key: 'FAULT-RESET-MID', rule: { reset: 'mid-body' }, expect: { status: 404, aborted: true }, perMille: 10 },
  { key: 'FAULT-HANG-BEFORE', rule: { hang: 'before-headers' }, expect: { status: 504, code: 'PAVE_PROXY_UPSTREAM_TIMEOUT' }, perMille: 5 },
  { key: 'FAULT-HANG-MID', rule: { hang: 'mid-body' }, expect: { status: 404, aborted: true }, perMille: 5 },
  { key: 'FAULT-503', rule: { status: 503 }, expect: { status: 503 }, perMille: 15 },
  { key: 'FAULT-SLOW', rule: { latencyMs: 300 }, expect: { status: 404 }, perMille: 20 }
]

interface Expect { status: number, code?: string, aborted?: boolean }

interface Sample { atS: number, rss: number, fds: number, sockets: number, heap: number | undefined }

const stats = {
  requests: 0,
  byOutcome: new Map<string, number>(),
  unexpected: [] as string[],
  latencies: [] as number[],
  aborts: { upload: 0, download: 0 },
  bursts: 0,
  overloaded: 0
}

function count (outcome: string): void {
  stats.byOutcome.set(outcome, (stats.byOutcome.get(outcome) ?? 0) + 1)
}

function unexpected (what: string): void {
  if (stats.unexpected.length < 50) stats.unexpected.push(what)
  count('unexpected')
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function processSample (pid: number): { rss: number, fds: number, sockets: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
  let fds = 0
  let sockets = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    fds++
    try { if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++ } catch { /* closed meanwhile */ }
  }
  return { rss, fds, sockets }
}

async function heapUsed (base: string, dispatcher: Agent): Promise<number | undefined> {
  try {
    const res = await request(`${base}/metrics`, { dispatcher })
    const text = await res.body.text()
    return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1])
  } catch {
    return undefined
  }
}

async function main (): Promise<void> {
  const started = Date.now()
  const mock = await startPaveMock({
    accounts: [ACCOUNT],
    faults: FAULTS.map((f) => ({ path: `/v1/sessions/${f.key}`, ...f.rule }))
  })
  const tokens = new Set<string>()
  const harvest = (): void => {
    for (const r of mock.requests) {
      const token = r.headers['api-token']
      if (typeof token === 'string') tokens.add(token)
    }
    mock.requests.length = 0
  }

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const outDir = mkdtempSync(join(tmpdir(), 'pave-proxy-soak-'))
  const outFile = join(outDir, 'proxy-output.log')
  const output = createWriteStream(outFile)
  const built = join(ROOT, 'dist/main.js')
  // The node flags of the image's ENTRYPOINT (the young generation's cap), so the memory checked is the container's.
  const args = [...imageNodeFlags(), ...(existsSync(built) ? [built] : ['--import', 'tsx', join(ROOT, 'src/main.ts')])]
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH ?? '',
      PAVE_USERNAME: ACCOUNT.username,
      PAVE_API_KEY: ACCOUNT.apiKey,
      PAVE_API_SECRET: ACCOUNT.secret,
      PAVE_UPSTREAM_URL: mock.url,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      PAVE_UPSTREAM_CONNECTIONS: String(POOL),
      PAVE_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
      PAVE_UPSTREAM_IDLE_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
      PAVE_PROXY_SHUTDOWN_DELAY_MS: '0'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout.pipe(output)
  child.stderr.pipe(output)
  const pid = child.pid as number
  let exited = false
  child.once('exit', () => { exited = true })

  const client = new Agent({ connections: 256, keepAliveTimeout: 4_000 })
  for (let i = 0; i < 100; i++) {
    try { await request(`${base}/readyz`, { dispatcher: client }).then(async (r) => await r.body.dump()); break } catch { await sleep(100) }
  }
  process.stdout.write(`soak: proxy pid ${pid} on ${base} (node ${args.join(' ').replace(ROOT, '')}), mock on ${mock.url}; ${DURATION_S} s at ${RATE} req/s, ${ABORTS} callers who leave\n`)

  const sessions: string[] = []
  let outstanding = 0
  const exchange = async (method: string, path: string, expect: Expect | 'pave', body?: string): Promise<void> => {
    outstanding++
    stats.requests++
    const t0 = Date.now()
    try {
      const res = await request(`${base}${path}`, {
        method: method as 'GET',
        dispatcher: client,
        signal: AbortSignal.timeout(DEADLINE_MS),
        ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {})
      })
      let text = ''
      let aborted = false
      try { text = await res.body.text() } catch { aborted = true }
      const code = res.headers['x-pave-proxy-error'] as string | undefined
      if (expect === 'pave') {
        if (res.statusCode >= 500 || code !== undefined || aborted) unexpected(`${method} ${path}: ${res.statusCode} ${code ?? ''}${aborted ? ' aborted' : ''}`)
        else {
          count(`pave ${res.statusCode}`)
          stats.latencies.push(Date.now() - t0)
          if (method === 'POST' && res.statusCode === 200) {
            const key = (JSON.parse(text) as { session_key?: string }).session_key
            if (key !== undefined && sessions.length < 1_000) sessions.push(key)
          }
        }
      } else if (res.statusCode === 503 && code === 'PAVE_PROXY_OVERLOADED') {
        stats.overloaded++
        count('overloaded 503')
      } else if (res.statusCode !== expect.status || code !== expect.code || aborted !== (expect.aborted === true)) {
        unexpected(`${method} ${path}: ${res.statusCode} ${code ?? ''}${aborted ? ' aborted' : ''}, expected ${JSON.stringify(expect)}`)
      } else {
        count(`fault ${path.split('/').pop() ?? ''}`)
      }
    } catch (error) {
      unexpected(`${method} ${path}: ${(error as Error).name} ${(error as NodeJS.ErrnoException).code ?? ''} after ${Date.now() - t0} ms`)
    } finally {
      outstanding--
    }
  }

  const oneRequest = (): void => {
    const dice = Math.floor(Math.random() * 1000)
    let edge = 0
    for (const fault of FAULTS) {
      edge += fault.perMille
      if (dice < edge) { void exchange('GET', `/v1/sessions/${fault.key}`, fault.expect); return }
    }
    const key = sessions.length > 0 ? sessions[Math.floor(Math.random() * sessions.length)] as string : 'UCB-UNKNOWN0000'
    if (dice < 300) void exchange('POST', '/v1/sessions', 'pave', JSON.stringify({ session: { theme: 'LITE' }, vehicle: { vin: '1HGCM82633A004352' } }))
    else if (dice < 600) void exchange('GET', `/v1/sessions/${key}`, 'pave')
    else if (dice < 750) void exchange('GET', '/v1/callbacks', 'pave')
    else if (dice < 850) void exchange('GET', `/v1/sessions/${key}/photos`, 'pave')
    else if (dice < 900) void exchange('PUT', `/v1/sessions/${key}`, 'pave', JSON.stringify({ session: { language: 'en' } }))
    else if (dice < 930) {
      void exchange('DELETE', `/v1/sessions/${key}`, 'pave')
      const at = sessions.indexOf(key)
      if (at !== -1) sessions.splice(at, 1)
    } else void exchange('GET', `/v1/sessions/${key}/results`, 'pave')
  }

  /** A caller who leaves: mid-upload (the body half sent) or mid-download (the hung body half read). */
  const abortOnce = async (upload: boolean): Promise<void> => {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { socket.destroy(); resolve() }, 5_000)
      const leave = (): void => { clearTimeout(timer); if (Math.random() < 0.5) socket.resetAndDestroy(); else socket.destroy(); resolve() }
      if (upload) {
        socket.write(`POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"session":${' '.repeat(2_000)}`)
        setTimeout(leave, 20)
      } else {
        socket.write('GET /v1/sessions/FAULT-HANG-MID HTTP/1.1\r\nHost: x\r\n\r\n')
        socket.once('data', leave)
      }
    })
    if (upload) stats.aborts.upload++
    else stats.aborts.download++
  }

  // The idle process before any traffic: what it must come back to.
  await sleep(500)
  const idleStart = processSample(pid)
  const idleStartHeap = await heapUsed(base, client)

  const samples: Sample[] = []
  const sample = async (): Promise<void> => {
    if (exited) return
    const s = processSample(pid)
    samples.push({ atS: (Date.now() - started) / 1000, ...s, heap: await heapUsed(base, client) })
    harvest()
  }

  // Steady traffic, aborts spread over 90 % of the run, a burst of 10x the pool every minute.
  const end = Date.now() + DURATION_S * 1000
  const abortEvery = ABORTS > 0 ? (DURATION_S * 900) / ABORTS : Infinity
  let abortsLaunched = 0
  let abortsRunning = 0
  let nextAbort = Date.now()
  let nextBurst = Date.now() + 30_000
  let nextSample = Date.now()
  let baseline: Sample | undefined
  const tick = 1000 / RATE
  let due = Date.now()
  while (Date.now() < end && !exited) {
    const now = Date.now()
    while (due <= now) {
      if (outstanding < 512) oneRequest()
      else count('skipped: 512 outstanding')
      due += tick
    }
    while (nextAbort <= now && abortsLaunched < ABORTS) {
      abortsLaunched++
      abortsRunning++
      void abortOnce(abortsLaunched % 2 === 0).finally(() => { abortsRunning-- })
      nextAbort += abortEvery
    }
    if (now >= nextBurst) {
      stats.bursts++
      for (let i = 0; i < POOL * 10; i++) void exchange('GET', '/v1/sessions/FAULT-SLOW', { status: 404 })
      nextBurst += 60_000
    }
    if (now >= nextSample) {
      await sample()
      if (baseline === undefined && (now - started) / 1000 >= WARMUP_S) baseline = samples[samples.length - 1]
      nextSample += 5_000
    }
    await sleep(Math.max(1, Math.min(due, nextAbort) - Date.now()))
  }
  while ((outstanding > 0 || abortsRunning > 0) && Date.now() < end + DEADLINE_MS + 5_000) await sleep(50)
  await sample()
  const lastUnderLoad = samples[samples.length - 1] as Sample

  // Idle: the client's connections close, then the pool's idle ones. undici keeps an idle
  // upstream connection as long as the upstream's Keep-Alive hint allows (the mock, a
  // Fastify server, says 72 s), so this waits up to 90 s; nothing else may remain.
  await client.close()
  const idleClient = new Agent({ pipelining: 0 })
  let final = processSample(pid)
  const idleWaitStarted = Date.now()
  let afterFiveSeconds: { fds: number, sockets: number } | undefined
  while (Date.now() - idleWaitStarted < 90_000) {
    await sleep(250)
    final = processSample(pid)
    if (afterFiveSeconds === undefined && Date.now() - idleWaitStarted >= 5_000) afterFiveSeconds = final
    if (final.fds <= idleStart.fds && final.sockets <= idleStart.sockets) break
  }
  const idleWaitS = Math.round((Date.now() - idleWaitStarted) / 1000)
  const finalHeap = await heapUsed(base, idleClient)
  await idleClient.close()
  harvest()

  child.kill('SIGTERM')
  const exitCode = await new Promise<number | null>((resolve) => { if (exited) resolve(child.exitCode); else child.once('exit', (code) => resolve(code)) })
  await new Promise<void>((resolve) => output.end(() => resolve()))
  await mock.close()

  // Secrets: the whole of the proxy's output, against the secret and every token PAVE received.
  const text = readFileSync(outFile, 'utf8')
  const leaks = [ACCOUNT.secret, ...tokens].filter((needle) => text.includes(needle)).length
  const lines = text.split('\n').length - 1

  const afterWarmup = samples.filter((s) => s.atS >= WARMUP_S)
  const rssValues = afterWarmup.map((s) => s.rss)
  const rssBand = rssValues.length > 0 ? Math.max(...rssValues) - Math.min(...rssValues) : 0
  const median = (values: number[]): number => { const v = [...values].sort((a, b) => a - b); return v[Math.floor(v.length / 2)] ?? 0 }
  const third = Math.max(1, Math.floor(rssValues.length / 3))
  const rssDrift = median(rssValues.slice(-third)) - median(rssValues.slice(0, third))
  const sorted = [...stats.latencies].sort((a, b) => a - b)
  const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN
  const limit = sidecarMemoryLimit()
  const peak = Math.max(...samples.map((s) => s.rss))
  const checks = {
    'no unexpected outcome': stats.unexpected.length === 0,
    [`RSS below the Kubernetes sidecar's memory limit (${limit.text}) all along`]: peak < limit.bytes,
    [`RSS within ${RSS_BAND_MIB} MiB after warm-up`]: rssBand <= RSS_BAND_MIB * MiB,
    [`RSS drift at most ${RSS_DRIFT_MIB} MiB`]: rssDrift <= RSS_DRIFT_MIB * MiB,
    'file descriptors back to the idle baseline': final.fds <= idleStart.fds,
    'sockets back to the idle baseline': final.sockets <= idleStart.sockets,
    'no secret or token in the output': leaks === 0,
    'every caller who leaves was driven': stats.aborts.upload + stats.aborts.download === Math.min(ABORTS, abortsLaunched) && abortsLaunched === ABORTS,
    'clean exit on SIGTERM': exitCode === 0
  }
  const report = {
    durationS: DURATION_S,
    rate: RATE,
    requests: stats.requests,
    outcomes: Object.fromEntries([...stats.byOutcome].sort()),
    unexpected: stats.unexpected,
    aborts: stats.aborts,
    bursts: stats.bursts,
    latencyMs: { p50: pct(0.5), p99: pct(0.99), max: sorted[sorted.length - 1] },
    rssMiB: {
      peak: +(peak / MiB).toFixed(1),
      kubernetesLimit: +(limit.bytes / MiB).toFixed(1),
      idleAtStart: +(idleStart.rss / MiB).toFixed(1),
      warm: baseline !== undefined ? +(baseline.rss / MiB).toFixed(1) : undefined,
      min: +(Math.min(...rssValues) / MiB).toFixed(1),
      max: +(Math.max(...rssValues) / MiB).toFixed(1),
      band: +(rssBand / MiB).toFixed(1),
      firstThirdMedian: +(median(rssValues.slice(0, third)) / MiB).toFixed(1),
      lastThirdMedian: +(median(rssValues.slice(-third)) / MiB).toFixed(1),
      drift: +(rssDrift / MiB).toFixed(1),
      underLoadAtEnd: +(lastUnderLoad.rss / MiB).toFixed(1),
      idleAtEnd: +(final.rss / MiB).toFixed(1)
    },
    heapMiB: {
      idleAtStart: idleStartHeap !== undefined ? +(idleStartHeap / MiB).toFixed(1) : undefined,
      warm: baseline?.heap !== undefined ? +(baseline.heap / MiB).toFixed(1) : undefined,
      idleAtEnd: finalHeap !== undefined ? +(finalHeap / MiB).toFixed(1) : undefined
    },
    fds: { idleAtStart: idleStart.fds, warm: baseline?.fds, underLoadAtEnd: lastUnderLoad.fds, idle5sAfter: afterFiveSeconds?.fds, idleAtEnd: final.fds },
    sockets: { idleAtStart: idleStart.sockets, warm: baseline?.sockets, underLoadAtEnd: lastUnderLoad.sockets, idle5sAfter: afterFiveSeconds?.sockets, idleAtEnd: final.sockets },
    idleWaitS,
    output: { lines, tokensWatched: tokens.size, leaks },
    checks
  }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  if (process.env.SOAK_REPORT !== undefined) await writeFile(process.env.SOAK_REPORT, JSON.stringify({ ...report, samples }, null, 2))
  const failed = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name)
  process.stdout.write(failed.length === 0 ? 'soak: PASS\n' : `soak: FAIL: ${failed.join('; ')}\n`)
  process.exitCode = failed.length === 0 ? 0 : 1
}

main().catch((error: unknown) => {
  process.stderr.write(`soak: ${(error as Error).stack ?? String(error)}\n`)
  process.exitCode = 1
})

/** The memory limit of the pave-proxy container in deploy/kubernetes/sidecar/, as written and in bytes. */
function sidecarMemoryLimit (): { text: string, bytes: number } {
  const [deployment] = only<Deployment>(kubernetesObjects('sidecar'), 'Deployment')
  const text = deployment !== undefined ? proxyContainers(deployment.spec.template.spec)[0]?.resources?.limits?.memory : undefined
  const bytes = quantity(text)
  if (text === undefined || !Number.isFinite(bytes)) throw new Error('deploy/kubernetes/sidecar: no memory limit for the pave-proxy container')
  return { text, bytes }
}

/** The flags between `node` and the script in the image's ENTRYPOINT. */
function imageNodeFlags (): string[] {
  const entrypoint = readDockerfile().stages.at(-1)?.instructions.find((i) => i.keyword === 'ENTRYPOINT')?.args
  return entrypoint !== undefined ? (JSON.parse(entrypoint) as string[]).slice(1, -1) : []
}
