/**
 * The Redis the limits rows keep their state in: a local redis-server, nothing saved.
 * (Their configuration, a limit nothing reaches, is made in variants.ts.)
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { freePort, startChild, waitPort, type Child } from './proc.js'
import { cleanEnv } from './contenders.js'

/** The redis-server binary, or undefined. */
export function redisServer (): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path !== '' ? path : undefined
}

/** Why the Redis row cannot run, or undefined. */
export function redisMissing (): string | undefined {
  return redisServer() === undefined ? 'redis-server not found (Debian: apt-get install redis-server)' : undefined
}

/** A redis-server on a free loopback port, nothing saved to disk. */
export async function startBenchRedis (dir: string, cores: string | undefined): Promise<{ url: string, child: Child }> {
  const port = await freePort()
  mkdirSync(dir, { recursive: true })
  const child = startChild('redis-server', redisServer() as string, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { cores, env: cleanEnv() })
  await waitPort(child, port)
  return { url: `redis://127.0.0.1:${port}`, child }
}
