/**
 * Debian's Prometheus for the monitoring smoke: finds `prometheus` and `promtool`
 * (installing the `prometheus` package with apt-get when this is a Debian machine
 * and we are root, saying so), runs promtool, and starts a throwaway server on a
 * free loopback port with its storage in a temporary directory.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { request } from 'undici'

const run = promisify(execFile)

/** The one line said when the package is missing and cannot be installed here. */
export const MISSING_PACKAGE = 'the monitoring smoke needs Debian\'s `prometheus` package (prometheus and promtool): apt-get install prometheus'

function onPath (name: string, path: string): string | undefined {
  for (const directory of path.split(delimiter)) {
    const candidate = join(directory, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

export interface PrometheusBinaries { readonly prometheus: string, readonly promtool: string }

export interface FindOptions {
  /** Where progress is said (the apt-get install). Default stderr. */
  readonly say?: (line: string) => void
  /** Directories searched. Default `PATH`, then /usr/bin and /usr/local/bin (where Debian puts them). */
  readonly path?: string
  /** May install with apt-get: root on a Debian machine. Default: decided from the machine. */
  readonly mayInstall?: boolean
}

/** Finds both binaries, or installs Debian's package as root on Debian, or throws {@link MISSING_PACKAGE}. */
export function findPrometheus (options: FindOptions = {}): PrometheusBinaries {
  const say = options.say ?? ((line: string) => process.stderr.write(line + '\n'))
  const path = options.path ?? [process.env.PATH ?? '', '/usr/bin', '/usr/local/bin'].join(delimiter)
  const found = (): PrometheusBinaries | undefined => {
    const prometheus = onPath('prometheus', path)
    const promtool = onPath('promtool', path)
    return prometheus !== undefined && promtool !== undefined ? { prometheus, promtool } : undefined
  }
  const present = found()
  if (present !== undefined) return present
  const aptGet = onPath('apt-get', path)
  const mayInstall = options.mayInstall ?? (process.getuid?.() === 0 && existsSync('/etc/debian_version'))
  if (mayInstall && aptGet !== undefined) {
    say('monitoring smoke: prometheus/promtool not found; installing Debian\'s prometheus package (apt-get install -y prometheus)')
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const install = (): number | null => spawnSync(aptGet, ['install', '-y', '--no-install-recommends', 'prometheus'], { stdio: 'inherit', env }).status
    if (install() !== 0) {
      spawnSync(aptGet, ['update'], { stdio: 'inherit', env })
      install()
    }
    const installed = found()
    if (installed !== undefined) return installed
  }
  throw new Error(MISSING_PACKAGE)
}

export interface ToolResult { readonly ok: boolean, readonly output: string }

/** Runs promtool with arguments in a directory; its output whatever the outcome. */
export async function promtool (binaries: PrometheusBinaries, args: string[], cwd: string): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await run(binaries.promtool, args, { cwd, timeout: 60_000 })
    return { ok: true, output: stdout + stderr }
  } catch (error) {
    const failed = error as { stdout?: string, stderr?: string, message: string }
    return { ok: false, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` || failed.message }
  }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

export interface RunningPrometheus {
  readonly url: string
  /** GET on the HTTP API; the decoded JSON answer. */
  readonly api: (path: string, query?: Record<string, string>) => Promise<PrometheusAnswer>
  readonly stop: () => Promise<void>
  /** What the server wrote to stderr (its log). */
  readonly log: () => string
}

export interface PrometheusAnswer {
  readonly status: 'success' | 'error'
  readonly data?: unknown
  readonly errorType?: string
  readonly error?: string
}

/** Starts Prometheus with a config file, storage in `dataDir`, on a free port of 127.0.0.1; resolves once it is ready. */
export async function startPrometheus (binaries: PrometheusBinaries, configFile: string, dataDir: string): Promise<RunningPrometheus> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const child = spawn(binaries.prometheus, [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    let log = ''
    child.stderr?.on('data', (chunk: Buffer) => { log += chunk.toString() })
    const url = `http://127.0.0.1:${port}`
    if (await ready(url, child)) {
      return {
        url,
        api: async (path, query = {}) => {
          const res = await request(`${url}${path}?${new URLSearchParams(query).toString()}`)
          return await res.body.json() as PrometheusAnswer
        },
        stop: async () => { await stop(child) },
        log: () => log
      }
    }
    await stop(child)
    // Another process may have taken the port between our probe and Prometheus's bind.
    if (attempt === 3) throw new Error(`prometheus did not start: ${log.trim()}`)
  }
}

async function ready (url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const res = await request(`${url}/-/ready`)
      await res.body.dump()
      if (res.statusCode === 200) return true
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}
