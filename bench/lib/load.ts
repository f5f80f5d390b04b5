/**
 * Load generators: wrk when installed (lowest overhead, microsecond latencies),
 * else autocannon for throughput and a small sequential keep-alive client for the
 * one-connection latencies (autocannon's histogram keeps whole milliseconds, too
 * coarse for the fraction of a millisecond a proxy adds).
 */
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { Agent, request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { percentile } from './stats.js'
import { trackHelper } from './proc.js'

export interface LoadResult {
  readonly tool: string
  readonly connections: number
  readonly requests: number
  readonly seconds: number
  /** 2xx responses per second. */
  readonly rps: number
  /** Non-2xx responses, socket errors and timeouts. */
  readonly errors: number
  readonly latencyUs: { readonly p50: number, readonly p99: number, readonly mean: number, readonly max: number }
}

export interface LoadGenerator {
  readonly name: string
  /** Throughput (and latency) with `connections` connections for `seconds`; `headers` on every request (a caller's credential). */
  run (url: string, connections: number, seconds: number, headers?: Readonly<Record<string, string>>): Promise<LoadResult>
  /** Latency with one connection, one request at a time, for `seconds`. */
  latency (url: string, seconds: number, headers?: Readonly<Record<string, string>>): Promise<LoadResult>
}

function collect (command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    trackHelper(child)
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${command} exited ${String(code)}: ${err.trim() || out.trim()}`))
    })
  })
}

function pinned (cores: string | undefined, command: string, args: string[]): [string, string[]] {
  return cores === undefined ? [command, args] : ['taskset', ['-c', cores, command, ...args]]
}

interface WrkReport {
  requests: number
  duration_us: number
  errors: { connect: number, read: number, write: number, status: number, timeout: number }
  latency_us: { p50: number, p90: number, p99: number, max: number, mean: number }
}

export function wrkGenerator (binary: string, cores: string | undefined, threads: number): LoadGenerator {
  const script = fileURLToPath(new URL('./wrk-report.lua', import.meta.url))
  const run = async (url: string, connections: number, seconds: number, headers: Readonly<Record<string, string>> = {}): Promise<LoadResult> => {
    const t = Math.max(1, Math.min(threads, connections))
    const d = Math.max(1, Math.round(seconds))
    const extra = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
    const [command, args] = pinned(cores, binary, ['-t', String(t), '-c', String(connections), '-d', `${d}s`, '--timeout', '5s', ...extra, '-s', script, url])
    const out = await collect(command, args, (d + 30) * 1000)
    const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '))
    if (line === undefined) throw new Error(`wrk printed no report: ${out}`)
    const report = JSON.parse(line.slice('BENCH_JSON '.length)) as WrkReport
    const e = report.errors
    const errors = e.connect + e.read + e.write + e.status + e.timeout
    const secondsRun = report.duration_us / 1e6
    return {
      tool: 'wrk',
      connections,
      requests: report.requests,
      seconds: secondsRun,
      rps: (report.requests - e.status) / secondsRun,
      errors,
      latencyUs: { p50: report.latency_us.p50, p99: report.latency_us.p99, mean: report.latency_us.mean, max: report.latency_us.max }
    }
  }
  return { name: `wrk (${binary})`, run, latency: (url, seconds, headers) => run(url, 1, seconds, headers) }
}

interface AutocannonReport {
  duration: number
  '2xx': number
  non2xx: number
  errors: number
  timeouts: number
  requests: { total: number }
  latency: { p50: number, p99: number, mean: number, max: number }
}

export function autocannonGenerator (cores: string | undefined): LoadGenerator {
  const cli = createRequire(import.meta.url).resolve('autocannon')
  const run = async (url: string, connections: number, seconds: number, headers: Readonly<Record<string, string>> = {}): Promise<LoadResult> => {
    const d = Math.max(1, Math.round(seconds))
    const extra = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}=${value}`])
    const [command, args] = pinned(cores, process.execPath, [cli, '-c', String(connections), '-d', String(d), '-t', '5', '-H', 'accept=application/json', ...extra, '-j', url])
    const out = await collect(command, args, (d + 30) * 1000)
    const report = JSON.parse(out.slice(out.indexOf('{'))) as AutocannonReport
    return {
      tool: 'autocannon',
      connections,
      requests: report.requests.total,
      seconds: report.duration,
      rps: report['2xx'] / report.duration,
      errors: report.non2xx + report.errors + report.timeouts,
      // autocannon records whole milliseconds.
      latencyUs: { p50: report.latency.p50 * 1000, p99: report.latency.p99 * 1000, mean: report.latency.mean * 1000, max: report.latency.max * 1000 }
    }
  }
  return { name: 'autocannon (in node_modules)', run, latency: sequentialLatency }
}

/** One keep-alive connection, one request at a time, in this process; microsecond timings. */
export async function sequentialLatency (url: string, seconds: number, headers: Readonly<Record<string, string>> = {}): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const samples: number[] = []
  let errors = 0
  const once = (): Promise<void> => new Promise((resolve) => {
    const started = process.hrtime.bigint()
    const req = request(url, { agent, headers: { accept: 'application/json', ...headers } }, (res) => {
      res.on('data', () => {})
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) samples.push(Number(process.hrtime.bigint() - started) / 1000)
        else errors++
        resolve()
      })
    })
    req.on('error', () => {
      errors++
      resolve()
    })
    req.end()
  })
  const began = performance.now()
  const end = began + seconds * 1000
  while (performance.now() < end) await once()
  const elapsed = (performance.now() - began) / 1000
  agent.destroy()
  const sorted = Float64Array.from(samples).sort()
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length)
  return {
    tool: 'sequential node client',
    connections: 1,
    requests: samples.length + errors,
    seconds: elapsed,
    rps: samples.length / elapsed,
    errors,
    latencyUs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean, max: sorted[sorted.length - 1] ?? 0 }
  }
}
