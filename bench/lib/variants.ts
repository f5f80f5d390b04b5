/**
 * pave-proxy's contenders: each one is the built proxy (`dist/`) with a configuration
 * or environment variant. To add a row (a gateway with callers, rate limits, tracing…),
 * append a {@link PaveVariant} to {@link PAVE_VARIANTS}: its environment and/or
 * configuration file on top of the production defaults, the target for it, and
 * when it needs something the machine may lack (a Redis server), a `skip` that says why.
 *
 * The `price` group is the price list: `bare` is pave-proxy with every optional stage
 * off; every other price row switches one stage on alone, and its price is its CPU per
 * request minus bare's in the same round (median over rounds).
 */
import type { PricedStage } from '../../src/app.js'

export interface PaveVariant {
  /** Row name, also what BENCH_CONTENDERS selects. */
  readonly name: string
  readonly description: string
  /** `main`: the proxy as deployed (production defaults, gateway configurations); `price`: the price list. */
  readonly group: 'main' | 'price'
  /** Environment on top of the production defaults (LOG_LEVEL=info, one account from the environment). */
  readonly env?: Readonly<Record<string, string>>
  /** A configuration file (YAML), written to the round's scratch directory and named by PAVE_PROXY_CONFIG. */
  readonly configYaml?: string
  /**
   * Stages left out (buildApp's `leaveOut`): the variant then runs through
   * `bench/pave-variant.ts` (buildApp from `dist/`, configured from the same environment)
   * instead of `dist/main.js`.
   */
  readonly leaveOut?: readonly PricedStage[]
  /** Why this variant cannot run here (a missing server), or undefined. */
  readonly skip?: () => string | undefined
  /** The target: req/s at least this × the floor's in the same rounds. */
  readonly minRpsRatio?: number
  /** The target: CPU per request at most this × the floor's. */
  readonly maxCpuRatio?: number
  /** Whether the 1-connection latency run is measured (the price rows skip it to save time). Default true for `main`. */
  readonly latency?: boolean
}

/** Every optional stage off: no access line, no metrics, no admission gate, no response deadline, no clock-skew sampling. */
const ALL_PRICED: readonly PricedStage[] = ['metrics', 'admission', 'responseDeadline']
const QUIET = { LOG_LEVEL: 'warn', PAVE_CLOCK_SKEW_CORRECTION: 'false' }
const without = (stage: PricedStage): PricedStage[] => ALL_PRICED.filter((s) => s !== stage)

export const PAVE_VARIANTS: readonly PaveVariant[] = [
  {
    name: 'pave-proxy',
    description: 'node dist/main.js, production defaults: access line at info (JSON, to a file), metrics, admission gate, response deadline, clock-skew sampling',
    group: 'main',
    minRpsRatio: 0.95,
    maxCpuRatio: 1.05
  },
  // Gateway rows (callers, limits, tracing) go here, e.g.
  // { name: 'gateway', group: 'main', configYaml: '…callers and rules…', minRpsRatio: 0.92, description: '…' },
  {
    name: 'bare',
    description: 'price list base: pave-proxy with every optional stage off (LOG_LEVEL=warn, no metrics, no admission gate, no response deadline, no clock-skew sampling)',
    group: 'price',
    env: QUIET,
    leaveOut: ALL_PRICED
  },
  {
    name: '+access-line',
    description: 'bare + the access line (LOG_LEVEL=info: one JSON line per request to a file)',
    group: 'price',
    env: { ...QUIET, LOG_LEVEL: 'info' },
    leaveOut: ALL_PRICED
  },
  {
    name: '+metrics',
    description: 'bare + request metrics (in-flight gauge, request and error counters, upstream latency histogram)',
    group: 'price',
    env: QUIET,
    leaveOut: without('metrics')
  },
  {
    name: '+admission',
    description: 'bare + the admission gate (in-flight cap, queue) and the send timeout',
    group: 'price',
    env: QUIET,
    leaveOut: without('admission')
  },
  {
    name: '+deadline',
    description: 'bare + the upstream response deadline (1xx cannot extend it; at most 16 of them)',
    group: 'price',
    env: QUIET,
    leaveOut: without('responseDeadline')
  },
  {
    name: '+clock-skew',
    description: 'bare + clock-skew sampling of the upstream\'s Date (and the 403 re-sign it enables)',
    group: 'price',
    env: { ...QUIET, PAVE_CLOCK_SKEW_CORRECTION: 'true' },
    leaveOut: ALL_PRICED
  }
]
