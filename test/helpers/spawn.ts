/** Runs `src/main.ts` (through tsx) as a real process. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))

export function spawnMain (args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    // A spawned proxy runs through tsx: its coverage would be merged under other source maps.
    env: { PATH: process.env.PATH ?? '', _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

export interface Finished { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export function collect (child: ChildProcess): { done: Promise<Finished>, stdout: () => string } {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const done = new Promise<Finished>((resolve) => {
    child.on('exit', (code, signal) => {
      // let the pipes drain
      setImmediate(() => resolve({ code, signal, stdout, stderr }))
    })
  })
  return { done, stdout: () => stdout }
}

export async function runMain (args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return await collect(spawnMain(args, env)).done
}

/** Resolves when the output so far matches. */
export async function waitForOutput (read: () => string, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  const started = Date.now()
  for (;;) {
    const match = pattern.exec(read())
    if (match !== null) return match
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${String(pattern)}; got: ${read()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
