/** What `bench/run.ts` and `bench/stream.ts` share: a temp dir, core pinning, the compiled helpers, clean exits. */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { cpus, tmpdir, availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { compileBench, REPO_ROOT } from './compile.js'
import { coreLayout, readKnobs, type CoreLayout, type Knobs } from './knobs.js'
import { installCleanup, pinSelf, which } from './proc.js'

export interface BenchContext {
  readonly knobs: Knobs
  readonly cores: CoreLayout
  /** Scratch directory, removed on exit. */
  readonly tmp: string
  readonly machine: { node: string, cpu: string, cores: number, platform: string, loadAverageAtStart: number }
  /** The commit measured, `+dirty` when src/ had uncommitted changes. */
  readonly revision: string
}

function revision (): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' })
  if (head.status !== 0) return 'unknown (not a git checkout)'
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO_ROOT, encoding: 'utf8' })
  return head.stdout.trim() + ((dirty.stdout ?? '').trim() !== '' ? '+dirty' : '')
}

/** One line on how busy the machine was: other processes on the bench's cores make every figure noisier. */
export function loadNote (ctx: BenchContext): string {
  const now = loadavg()[0] ?? Number.NaN
  const start = ctx.machine.loadAverageAtStart
  const busy = Math.max(start, now) > ctx.machine.cores * 0.5
  return `1-minute load average ${start.toFixed(2)} at start, ${now.toFixed(2)} at the end${busy ? ' — other work was running on this machine: expect noisier figures (p99 most of all)' : ''}`
}

export function setUp (): BenchContext {
  const knobs = readKnobs()
  // Before pinning: afterwards the harness sees only its own cores.
  const machine = {
    node: process.version,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtStart: loadavg()[0] ?? Number.NaN
  }
  const cores = coreLayout(knobs.pin, which('taskset') !== undefined)
  pinSelf(cores.load)
  const tmp = mkdtempSync(join(tmpdir(), 'pave-bench-'))
  installCleanup(() => rmSync(tmp, { recursive: true, force: true }))
  compileBench()
  return { knobs, cores, tmp, machine, revision: revision() }
}

/** Writes a report to bench/results/<name> (git-ignored); returns its path relative to the repo. */
export function writeResult (name: string, report: unknown): string {
  const dir = join(REPO_ROOT, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, name), JSON.stringify(report, null, 2) + '\n')
  return `bench/results/${name}`
}

/** Progress goes to stderr; the report to stdout. */
export function progress (message: string): void {
  process.stderr.write(`bench: ${message}\n`)
}
