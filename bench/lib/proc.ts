/**
 * Child processes of the bench: spawned (optionally pinned to cores with taskset),
 * watched, measured (RSS from /proc) and always stopped, by pid, on the way out.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import { request } from 'node:http'

/** Absolute path of an executable on PATH (or in the sbin directories), or undefined. */
export function which (name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin']
  for (const dir of dirs) {
    if (dir === '') continue
    const candidate = join(dir, name)
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

/** Pins the calling process, all its threads included, to the given cores. */
export function pinSelf (cores: string | undefined): void {
  if (cores === undefined) return
  const result = spawnSync('taskset', ['-a', '-p', '-c', cores, String(process.pid)], { stdio: 'ignore' })
  if (result.status !== 0) process.stderr.write(`bench: could not pin the harness to cores ${cores}\n`)
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

export interface Child {
  readonly name: string
  readonly pid: number
  readonly process: ChildProcess
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>
  /** Stderr kept for error messages (last 8 KiB). */
  stderrTail (): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop (graceMs?: number): Promise<void>
}

const running = new Set<Child>()
/** Short-lived helpers (load generators): killed too when the harness is interrupted. */
const helpers = new Set<ChildProcess>()

/** Registers a short-lived child so an interrupted harness does not leave it behind. */
export function trackHelper (child: ChildProcess): void {
  helpers.add(child)
  child.once('exit', () => helpers.delete(child))
}

export interface SpawnOptions {
  readonly cores?: string | undefined
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Where stdout goes: 'ignore' (default), 'pipe', or an open file descriptor. */
  readonly stdout?: 'ignore' | 'pipe' | number
}

/** Spawns a command, through `taskset -c <cores>` when cores are given (taskset execs it: same pid). */
export function startChild (name: string, command: string, args: string[], options: SpawnOptions = {}): Child {
  const [file, argv] = options.cores !== undefined ? ['taskset', ['-c', options.cores, command, ...args]] : [command, args]
  const stdio: StdioOptions = ['ignore', options.stdout ?? 'ignore', 'pipe']
  const child = spawn(file, argv, { stdio, env: options.env ?? process.env, cwd: options.cwd })
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`)
  let tail = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-8192)
  })
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      if (signal !== null) tail += `\n(killed by ${signal})`
      resolve(code)
    })
    child.once('error', (error) => {
      tail += `\n${error.message}`
      resolve(null)
    })
  })
  const handle: Child = {
    name,
    pid: child.pid,
    process: child,
    exited,
    stderrTail: () => tail,
    stop: async (graceMs = 5_000) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
      running.delete(handle)
    }
  }
  running.add(handle)
  void exited.then(() => running.delete(handle))
  return handle
}

/** Stops every child still running (on the way out, also after a failure). */
export async function stopAll (): Promise<void> {
  for (const helper of helpers) helper.kill('SIGKILL')
  await Promise.all([...running].map((child) => child.stop(2_000)))
}

let cleanupInstalled = false
/** Stops the children when the harness is interrupted. */
export function installCleanup (extra: () => void = () => {}): void {
  if (cleanupInstalled) return
  cleanupInstalled = true
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping the children\n`)
      void stopAll().finally(() => {
        extra()
        process.exit(130)
      })
    })
  }
  process.once('exit', () => {
    for (const helper of helpers) helper.kill('SIGKILL')
    for (const child of running) child.process.kill('SIGKILL')
    extra()
  })
}

/** Resident set size of one process, in bytes (0 when it is gone). */
export function rssOf (pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(status)
    return match?.[1] !== undefined ? Number(match[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/**
 * Anonymous (private: heap, stacks) resident bytes of one process, from
 * /proc/<pid>/smaps_rollup; RSS minus this is file-backed, mostly the node or nginx
 * binary's pages, which every process running that binary shares.
 */
export function anonOf (pid: number): number {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    const match = /Anonymous:\s+(\d+)\s+kB/.exec(rollup)
    return match?.[1] !== undefined ? Number(match[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** Pids of a process's direct children (from /proc/<pid>/task/<tid>/children). */
function childPids (pid: number): number[] {
  const pids: number[] = []
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim()
      if (text !== '') pids.push(...text.split(/\s+/).map(Number))
    }
  } catch {
    // gone, or no /proc
  }
  return pids
}

/** RSS of a process and all its descendants (nginx: master + workers), in bytes. */
export function treeRss (pid: number): number {
  let total = rssOf(pid)
  for (const child of childPids(pid)) total += treeRss(child)
  return total
}

let clockTicks: number | undefined
/** Kernel clock ticks per second (USER_HZ), for /proc/<pid>/stat times. */
function ticksPerSecond (): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
    const value = Number(out.stdout?.trim())
    clockTicks = Number.isFinite(value) && value > 0 ? value : 100
  }
  return clockTicks
}

/** CPU seconds (user + system) used so far by a process and its descendants (NaN without /proc). */
export function treeCpuSeconds (pid: number): number {
  let ticks = 0
  const add = (id: number): void => {
    const stat = readFileSync(`/proc/${id}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
    for (const child of childPids(id)) add(child)
  }
  try {
    add(pid)
  } catch {
    return Number.NaN
  }
  return ticks / ticksPerSecond()
}

/** Anonymous resident bytes of a process and its descendants. */
export function treeAnon (pid: number): number {
  let total = anonOf(pid)
  for (const child of childPids(pid)) total += treeAnon(child)
  return total
}

/** Samples `treeRss(pid)` every `intervalMs` until stopped; returns the peak. */
export function sampleRss (pid: number, intervalMs = 100): { stop: () => number, stopBoth: () => { rss: number, anon: number } } {
  let peak = treeRss(pid)
  let peakAnon = treeAnon(pid)
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRss(pid))
    peakAnon = Math.max(peakAnon, treeAnon(pid))
  }, intervalMs)
  const stopBoth = (): { rss: number, anon: number } => {
    clearInterval(timer)
    peak = Math.max(peak, treeRss(pid))
    peakAnon = Math.max(peakAnon, treeAnon(pid))
    return { rss: peak, anon: peakAnon }
  }
  return { stop: () => stopBoth().rss, stopBoth }
}

export interface GetResult {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

/** One GET over a fresh connection, with a timeout. */
export function httpGet (url: string, headers: Record<string, string> = {}, timeoutMs = 2_000): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/**
 * Polls `url` until it answers `expectStatus`; resolves with the milliseconds since
 * `since` (a `performance.now()` value). Fails when the child exits or on timeout.
 */
export async function waitServed (child: Child | undefined, url: string, since: number, timeoutMs = 20_000, expectStatus = 200, headers: Record<string, string> = {}): Promise<number> {
  const deadline = since + timeoutMs
  let exitCode: number | null | undefined
  void child?.exited.then((code) => { exitCode = code })
  let last = ''
  while (performance.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${child?.name ?? 'process'} exited (code ${String(exitCode)}) before serving: ${child?.stderrTail().trim() ?? ''}`)
    try {
      const { status, body } = await httpGet(url, headers, 1_000)
      if (status === expectStatus) return performance.now() - since
      last = `status ${status}: ${body.slice(0, 200)}`
    } catch (error) {
      last = (error as Error).message
    }
    await sleep(5)
  }
  throw new Error(`${child?.name ?? url} did not serve ${url} within ${timeoutMs} ms (last: ${last}) ${child?.stderrTail().trim() ?? ''}`)
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls until a TCP connection to 127.0.0.1:port succeeds; fails when the child exits or on timeout. */
export async function waitPort (child: Child, port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  let exitCode: number | null | undefined
  void child.exited.then((code) => { exitCode = code })
  while (performance.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${child.name} exited (code ${String(exitCode)}): ${child.stderrTail().trim()}`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' })
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    await sleep(5)
  }
  throw new Error(`${child.name} did not listen on ${port} within ${timeoutMs} ms: ${child.stderrTail().trim()}`)
}
