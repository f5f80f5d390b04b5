/**
 * A real `redis-server` for tests: found on the PATH (or in /usr/bin, /usr/sbin); on a
 * Debian machine, as root, installed with apt-get (saying so); anywhere else the
 * set-up fails with one line naming the package. Started on a free loopback port
 * with nothing saved to disk, stopped at teardown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

const CANDIDATES = ['/usr/bin/redis-server', '/usr/sbin/redis-server', '/usr/local/bin/redis-server']

function onPath (): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  if (found.status === 0 && path !== '') return path
  return CANDIDATES.find((candidate) => existsSync(candidate))
}

let binary: string | undefined

/** The redis-server binary, installed first on a fresh Debian machine when run as root. */
export function redisServerBinary (): string {
  if (binary !== undefined) return binary
  let found = onPath()
  if (found === undefined && existsSync('/etc/debian_version') && process.getuid?.() === 0) {
    process.stderr.write('redis-server not found: installing Debian\'s redis-server package with apt-get (the rate-limit tests need a real Redis)\n')
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'redis-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    found = onPath()
  }
  if (found === undefined) throw new Error('redis-server not found: install the redis-server package (Debian/Ubuntu: apt-get install redis-server) to run the rate-limit tests')
  binary = found
  return found
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface TestRedis {
  readonly port: number
  readonly url: string
  /** A client for the test's own commands (CLIENT PAUSE, FLUSHALL, GET…). */
  readonly admin: () => Redis
  /** Stops the server (SIGKILL: a crash, not a clean shutdown). */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port, empty. */
  readonly start: () => Promise<void>
  readonly close: () => Promise<void>
}

/** TLS only on the port, with this certificate and key (PEM files); clients are not asked for certificates. */
export interface RedisTls { certFile: string, keyFile: string, caFile: string }

/** Starts a redis-server on a free port; extra arguments are passed on (`--requirepass x`). */
export async function startRedis (extra: string[] = [], tls?: RedisTls): Promise<TestRedis> {
  const bin = redisServerBinary()
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'pave-redis-'))
  let child: ChildProcess | undefined
  let admin: Redis | undefined

  const start = async (): Promise<void> => {
    const ports = tls === undefined
      ? ['--port', String(port)]
      : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no']
    child = spawn(bin, [...ports, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', '--loglevel', 'warning', ...extra], { stdio: 'ignore' })
    const started = Date.now()
    for (;;) {
      const probe = new Redis({ port, host: '127.0.0.1', ...tlsOption(tls), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, ...(passwordOf(extra) !== undefined ? { password: passwordOf(extra) } : {}) })
      probe.on('error', () => {})
      try {
        await probe.connect()
        await probe.ping()
        probe.disconnect()
        return
      } catch {
        probe.disconnect()
        if (Date.now() - started > 10_000) throw new Error(`redis-server did not start on port ${port}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  const stop = async (): Promise<void> => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()))
    running.kill('SIGKILL')
    await exited
  }
  await start()
  return {
    port,
    url: `${tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    admin: () => {
      if (admin === undefined) {
        admin = new Redis({ port, host: '127.0.0.1', ...tlsOption(tls), maxRetriesPerRequest: 1, ...(passwordOf(extra) !== undefined ? { password: passwordOf(extra) } : {}) })
        admin.on('error', () => {})
      }
      return admin
    },
    stop,
    start,
    close: async () => {
      admin?.disconnect()
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

function tlsOption (tls: RedisTls | undefined): { tls?: { ca: string } } {
  return tls === undefined ? {} : { tls: { ca: readFileSync(tls.caFile, 'utf8') } }
}

function passwordOf (extra: string[]): string | undefined {
  const at = extra.indexOf('--requirepass')
  return at >= 0 ? extra[at + 1] : undefined
}
