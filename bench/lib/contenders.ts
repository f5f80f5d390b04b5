/**
 * How each process of the bench is started: the Node upstream, and the
 * contenders (floor, http-proxy, nginx, pave-proxy), each timed from spawn to its
 * first served request.
 */
import { closeSync, existsSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { compiled, REPO_ROOT } from './compile.js'
import { freePort, httpGet, startChild, waitPort, waitServed, type Child } from './proc.js'
import { errorLogTail, proxyConfig, njsScript, startNginx, type NginxInstall } from './nginx.js'
import { BENCH_CREDENTIALS } from './signing.js'
import { BENCH_PATH, VERIFY_PATH } from './fixture.js'

export interface Running {
  readonly name: string
  /** Origin to send requests to, e.g. `http://127.0.0.1:1234`. */
  readonly origin: string
  /** The process whose RSS is measured (its descendants included). */
  readonly pid: number
  /** Milliseconds from spawn to the first 200 on a proxied path (NaN when not started here). */
  readonly startupMs: number
  /** Headers every request carries (a gateway caller's credential). Default none. */
  readonly headers?: Readonly<Record<string, string>>
  stop (): Promise<void>
}

/** Environment of a child: only what it needs, never the caller's PAVE_* settings. */
export function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'TZ']
  const env: NodeJS.ProcessEnv = {}
  for (const name of keep) if (process.env[name] !== undefined) env[name] = process.env[name]
  env.NODE_ENV = 'production'
  return { ...env, ...extra }
}

async function started (name: string, child: Child, origin: string, since: number, headers: Readonly<Record<string, string>> = {}): Promise<Running> {
  try {
    const startupMs = await waitServed(child, origin + BENCH_PATH, since, 20_000, 200, { ...headers })
    return { name, origin, pid: child.pid, startupMs, stop: () => child.stop(), headers }
  } catch (error) {
    await child.stop(1_000)
    throw error
  }
}

export interface NodeUpstreamOptions {
  readonly tls?: { cert: string, key: string }
  readonly requireSignature?: boolean
}

/** The Node upstream (bench/upstream.ts). */
export async function startNodeUpstream (cores: string | undefined, options: NodeUpstreamOptions = {}): Promise<Running> {
  const port = await freePort()
  const since = performance.now()
  const child = startChild('node upstream', process.execPath, [compiled('bench/upstream.ts'), JSON.stringify({ port, ...options })], { cores, env: cleanEnv() })
  const origin = `${options.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${port}`
  if (options.tls !== undefined) {
    // An HTTPS request would need the CA: wait for the port instead.
    await waitPort(child, port).catch(async (error: unknown) => {
      await child.stop(1_000)
      throw error
    })
    return { name: 'node upstream (TLS)', origin, pid: child.pid, startupMs: performance.now() - since, stop: () => child.stop() }
  }
  return await started('node upstream', child, origin, since)
}

/** The floor contender (bench/floor.ts). */
export async function startFloor (upstream: string, cores: string | undefined, node = process.execPath): Promise<Running> {
  return await startBenchServer('floor', 'bench/floor.ts', upstream, cores, node)
}

/** The Fastify floor (bench/fastify-floor.ts): Fastify 5, one catch-all route, reply.hijack(), undici Pool.stream(), no logging. */
export async function startFastifyFloor (upstream: string, cores: string | undefined, node = process.execPath): Promise<Running> {
  return await startBenchServer('fastify-floor', 'bench/fastify-floor.ts', upstream, cores, node)
}

/** The http-proxy contender (bench/http-proxy.ts). */
export async function startHttpProxy (upstream: string, cores: string | undefined, node = process.execPath): Promise<Running> {
  return await startBenchServer('http-proxy', 'bench/http-proxy.ts', upstream, cores, node)
}

/** A bench server (`bench/<name>.ts`) in front of `upstream`; `nodeFlags` e.g. `--cpu-prof` (bench/profile.ts). */
export async function startBenchServer (name: string, file: string, upstream: string, cores: string | undefined, node: string, nodeFlags: string[] = []): Promise<Running> {
  const port = await freePort()
  const since = performance.now()
  const child = startChild(name, node, [...nodeFlags, compiled(file), JSON.stringify({ port, upstream })], { cores, env: cleanEnv() })
  return await started(name, child, `http://127.0.0.1:${port}`, since)
}

/** The nginx contender (njs signs). */
export async function startNginxProxy (install: NginxInstall, dir: string, upstreamPort: number, cores: string | undefined): Promise<Running> {
  if (install.njsModule === undefined) throw new Error('njs is not installed')
  const port = await freePort()
  const since = performance.now()
  const child = startNginx('nginx', install, dir, proxyConfig(dir, port, upstreamPort, install.njsModule), cores, { 'pave-sign.js': njsScript() })
  try {
    return await started('nginx', child, `http://127.0.0.1:${port}`, since)
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${errorLogTail(dir)}`)
  }
}

export const PAVE_PROXY_MAIN = join(REPO_ROOT, 'dist', 'main.js')

/** Why pave-proxy cannot be run, or undefined when it can. */
export function paveProxyMissing (): string | undefined {
  return existsSync(PAVE_PROXY_MAIN) ? undefined : `${PAVE_PROXY_MAIN} not found (npm run build)`
}

export interface PaveProxyOptions {
  readonly upstream: string
  readonly cores: string | undefined
  /** File its JSON log lines go to (production defaults: logging on, level info). */
  readonly logFile: string
  readonly env?: Record<string, string>
  /** Extra node flags (e.g. --cpu-prof). */
  readonly nodeFlags?: string[]
  /** BENCH_PAVE_PROXY_ENV: applied last. */
  readonly overrides?: Record<string, string>
  /** The node binary (BENCH_NODE). Default: the harness's own. */
  readonly node?: string
  /** Stages left out: runs bench/pave-variant.ts (buildApp from dist/) instead of dist/main.js. */
  readonly leaveOut?: readonly string[]
  /** Headers every request carries (a gateway caller's credential). */
  readonly headers?: Readonly<Record<string, string>>
  /** Row name in progress and errors. Default `pave-proxy`. */
  readonly name?: string
  /** Another build to run instead of this checkout's `dist/` (BENCH_COMPARE_DIST). */
  readonly dist?: string
}

/** pave-proxy itself, from dist/, with its production defaults. */
export async function startPaveProxy (options: PaveProxyOptions): Promise<Running> {
  const port = await freePort()
  const log = openSync(options.logFile, 'a')
  const env = cleanEnv({
    PAVE_USERNAME: BENCH_CREDENTIALS.username,
    PAVE_API_KEY: BENCH_CREDENTIALS.apiKey,
    PAVE_API_SECRET: BENCH_CREDENTIALS.secret,
    PAVE_UPSTREAM_URL: options.upstream,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0',
    ...options.env,
    ...options.overrides
  })
  const since = performance.now()
  const name = options.name ?? 'pave-proxy'
  const dist = options.dist ?? join(REPO_ROOT, 'dist')
  const entry = options.leaveOut === undefined
    ? [join(dist, 'main.js')]
    : [compiled('bench/pave-variant.ts'), JSON.stringify({ dist, leaveOut: options.leaveOut })]
  let child: Child
  try {
    child = startChild(name, options.node ?? process.execPath, [...(options.nodeFlags ?? []), ...entry], { cores: options.cores, env, stdout: log, cwd: REPO_ROOT })
  } finally {
    closeSync(log)
  }
  return await started(name, child, `http://127.0.0.1:${port}`, since, options.headers)
}

/**
 * Checks that a contender signs: the upstream's /bench/verify answers 200 only for
 * exactly one valid set of PAVE headers. Forged caller headers are sent along, so
 * a contender that forwards them instead of replacing them fails.
 */
export async function checkSigning (origin: string, headers: Readonly<Record<string, string>> = {}): Promise<string | undefined> {
  const forged = { ...headers, 'api-key': 'forged-key', 'api-timestamp': '2000-01-01T00:00:00Z', 'api-token': 'forged-token' }
  try {
    const { status, body } = await httpGet(origin + VERIFY_PATH, forged)
    return status === 200 ? undefined : `signature check failed: ${status} ${body}`
  } catch (error) {
    return `signature check failed: ${(error as Error).message}`
  }
}

/** The delay relay (bench/relay.ts) in front of `targetPort`. */
export async function startRelay (targetPort: number, delayMs: number, emulateConnect: boolean, cores: string | undefined): Promise<Running> {
  const port = await freePort()
  const since = performance.now()
  const child = startChild('relay', process.execPath, [compiled('bench/relay.ts'), JSON.stringify({ port, targetPort, delayMs, emulateConnect })], { cores, env: cleanEnv() })
  await waitPort(child, port).catch(async (error: unknown) => {
    await child.stop(1_000)
    throw error
  })
  return { name: 'relay', origin: `http://127.0.0.1:${port}`, pid: child.pid, startupMs: performance.now() - since, stop: () => child.stop() }
}

/**
 * A trace collector that takes every OTLP/HTTP export and answers 200 at once, for the
 * tracing rows (it runs in the bench's own process, so its CPU is not the proxy's).
 */
export async function startTraceSink (): Promise<{ readonly url: string, readonly exports: () => number, readonly close: () => Promise<void> }> {
  const { createServer } = await import('node:http')
  let exports = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => { exports++; res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as import('node:net').AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    exports: () => exports,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
