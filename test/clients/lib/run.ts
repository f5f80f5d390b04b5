/** Runs a client program (or finds that its runtime is missing). */
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const PROGRAMS = fileURLToPath(new URL('../programs/', import.meta.url))
export const REPO = fileURLToPath(new URL('../../../', import.meta.url))

/** The absolute path of a command on PATH, or undefined when it is not installed. */
export function which (command: string): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path !== '' ? path : undefined
}

export interface Ran { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, ms: number }

export interface RunOptions {
  env?: Record<string, string>
  /** Bytes written to the program's stdin (then closed); stdin is empty otherwise. */
  stdin?: Iterable<Buffer>
  timeoutMs?: number
  cwd?: string
}

/**
 * Runs a program to its end. Its environment is PATH and HOME plus `env` only: nothing of
 * tap's (no NODE_OPTIONS loaders, no coverage) leaks into a client under test.
 */
export async function run (command: string, args: string[], options: RunOptions = {}): Promise<Ran> {
  const started = Date.now()
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdin.on('error', () => {}) // a program that does not read its stdin
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  // A program may stop reading its input (curl does when the answer comes first): feeding stops with it.
  const fed = (async () => {
    for (const chunk of options.stdin ?? []) {
      if (child.stdin.destroyed) return
      if (!child.stdin.write(chunk)) await new Promise((resolve) => { child.stdin.once('drain', resolve); child.stdin.once('close', resolve) })
    }
    child.stdin.end()
  })()
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, s) => resolve([c, s]))
  }).finally(() => { clearTimeout(timer); child.stdin.destroy() })
  await fed.catch(() => {})
  return { code, signal, stdout, stderr, ms: Date.now() - started }
}
