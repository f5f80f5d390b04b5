/** Runs the mock's bins (`src/mock/*.ts`, through tsx) as real processes. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * Children run without tap's coverage: tap would merge the coverage of their
 * tsx-compiled modules with the test process's own, under other source maps,
 * and the report of the shared files would then depend on the order of merging.
 */
const NO_CHILD_COVERAGE = { _TAPJS_PROCESSINFO_COVERAGE_: '0' }

export const MOCK_MAIN = fileURLToPath(new URL('../../src/mock/main.ts', import.meta.url))
export const MOCK_DEMO = fileURLToPath(new URL('../../src/demo.ts', import.meta.url))

export function spawnTs (file: string, args: string[] = [], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    env: { PATH: process.env.PATH ?? '', ...NO_CHILD_COVERAGE, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}
