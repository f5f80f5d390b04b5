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
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { PricedStage } from '../../src/app.js'
import { BENCH_PATH, VERIFY_PATH } from './fixture.js'
import { redisMissing } from './limits.js'

/** What a variant's `prepare` makes for a round: files written, and what the proxy and the load need. */
export interface PreparedVariant {
  /** Environment on top of the variant's `env`. */
  readonly env?: Readonly<Record<string, string>>
  /** Headers every request of the round carries (a gateway caller's credential). */
  readonly headers?: Readonly<Record<string, string>>
}

/** What the run offers a variant's `prepare`: its scratch directory and the shared servers. */
export interface PrepareContext {
  /** A directory of its own for this round. */
  readonly dir: string
  /** A local redis-server (started once for the run, on the upstream's core), for the Redis rows. */
  readonly redisUrl: () => Promise<string>
  /** An OTLP/HTTP collector that takes every export, in the harness's process. */
  readonly traceSinkUrl: () => Promise<string>
}

export interface PaveVariant {
  /** Row name, also what BENCH_CONTENDERS selects. */
  readonly name: string
  readonly description: string
  /** `main`: the proxy as deployed (production defaults, gateway configurations); `price`: the price list. */
  readonly group: 'main' | 'price'
  /** Environment on top of the production defaults (LOG_LEVEL=info, one account from the environment). */
  readonly env?: Readonly<Record<string, string>>
  /**
   * Stages left out (buildApp's `leaveOut`): the variant then runs through
   * `bench/pave-variant.ts` (buildApp from `dist/`, configured from the same environment)
   * instead of `dist/main.js`.
   */
  readonly leaveOut?: readonly PricedStage[]
  /** Files and servers the round needs (a caller's token file, a JWKS, Redis): run before each start. */
  readonly prepare?: (context: PrepareContext) => Promise<PreparedVariant>
  /** Why this variant cannot run here (a missing server), or undefined. */
  readonly skip?: () => string | undefined
  /** The target: req/s at least this × the floor's in the same rounds. */
  readonly minRpsRatio?: number
  /** The target: CPU per request at most this × the floor's. */
  readonly maxCpuRatio?: number
  /** Whether the 1-connection latency run is measured (the price rows skip it to save time). Default true for `main`. */
  readonly latency?: boolean
}

/** Every optional stage off: no access line, no metrics, no admission gate, no clock-skew sampling. */
const ALL_PRICED: readonly PricedStage[] = ['metrics', 'admission']
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
  {
    name: 'gateway',
    description: 'gateway: one caller with a bearer token (from its token file) and allow rules; the audit trail of its requests to a file',
    group: 'main',
    minRpsRatio: 0.92,
    prepare: async ({ dir }) => await gateway(dir, 'token')
  },
  {
    name: 'gateway-jwt',
    description: 'gateway: one caller with an ES256 JWT checked against a JWKS file (the same token on every request: after the first, the verified-token cache answers)',
    group: 'main',
    prepare: async ({ dir }) => await gateway(dir, 'jwt')
  },
  {
    name: 'gateway+memory-limits',
    description: 'gateway (token caller + rules) with a caller limit and an account limit nothing reaches, kept in memory',
    group: 'main',
    minRpsRatio: 0.9,
    prepare: async ({ dir }) => await gateway(dir, 'token', { limits: 'memory' })
  },
  {
    name: 'gateway+redis-limits',
    description: 'gateway (token caller + rules) with a caller limit and an account limit nothing reaches, kept in a local redis-server (one script call per request)',
    group: 'main',
    minRpsRatio: 0.8,
    skip: redisMissing,
    prepare: async ({ dir, redisUrl }) => await gateway(dir, 'token', { limits: await redisUrl() })
  },
  {
    name: 'trace-off',
    description: 'production defaults + tracing configured with its sampler off (parentbased_always_off; the load sends no traceparent)',
    group: 'main',
    minRpsRatio: 0.93,
    prepare: async ({ traceSinkUrl }) => ({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: await traceSinkUrl(), OTEL_TRACES_SAMPLER: 'parentbased_always_off' } })
  },
  {
    name: 'trace-all',
    description: 'production defaults + every request sampled (always_on), spans batched and exported as OTLP/protobuf to a collector that takes everything',
    group: 'main',
    prepare: async ({ traceSinkUrl }) => ({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: await traceSinkUrl(), OTEL_TRACES_SAMPLER: 'always_on' } })
  },
  {
    name: 'bare',
    description: 'price list base: pave-proxy with every optional stage off (LOG_LEVEL=warn, no metrics, no admission gate, no clock-skew sampling)',
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
    name: '+clock-skew',
    description: 'bare + clock-skew sampling of the upstream\'s Date (and the 403 re-sign it enables)',
    group: 'price',
    env: { ...QUIET, PAVE_CLOCK_SKEW_CORRECTION: 'true' },
    leaveOut: ALL_PRICED
  }
]

/** The account limit and the caller limit of the limits rows: far above anything one process serves. */
const UNREACHED = { requestsPerSecond: 1_000_000, burst: 1_000_000 }

/**
 * A gateway configuration (JSON is YAML) with one caller, `bench`, allowed the bench's
 * paths: a bearer token from a token file, or an ES256 JWT from a JWKS file. With
 * `limits`, the caller and the account get a limit nothing reaches, in memory or in the
 * Redis at that URL. The audit trail goes to a file in `dir`.
 */
async function gateway (dir: string, proof: 'token' | 'jwt', options: { limits?: 'memory' | string } = {}): Promise<PreparedVariant> {
  mkdirSync(dir, { recursive: true })
  let credential: string
  let callerProof: Record<string, unknown>
  if (proof === 'token') {
    credential = 'bench-caller-token-not-real-0123456789'
    writeFileSync(join(dir, 'bench.tokens'), credential + '\n')
    callerProof = { tokenFile: join(dir, 'bench.tokens') }
  } else {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...await exportJWK(publicKey), kid: 'bench', alg: 'ES256', use: 'sig' }] }))
    const subject = 'system:serviceaccount:bench:caller'
    credential = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'bench' }).setIssuer('https://bench.invalid').setAudience('pave-proxy').setSubject(subject)
      .setIssuedAt().setExpirationTime('2h').sign(privateKey)
    callerProof = { jwt: { issuer: 'https://bench.invalid', audience: 'pave-proxy', subject, jwksFile: join(dir, 'jwks.json') } }
  }
  const limited = options.limits !== undefined
  const config = {
    ...(limited && options.limits !== 'memory' ? { limits: { store: 'redis', redis: { url: options.limits } } } : {}),
    ...(limited ? { accounts: [{ name: 'default', prefix: '/', limit: UNREACHED }] } : {}),
    callers: [{
      name: 'bench',
      ...callerProof,
      allow: [{ methods: ['GET', 'HEAD'], paths: [BENCH_PATH.replace(/[^/]+$/, '*'), VERIFY_PATH] }],
      ...(limited ? { limit: UNREACHED } : {})
    }],
    audit: { file: join(dir, 'audit.log') }
  }
  const file = join(dir, 'pave-proxy.yaml')
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n')
  return { env: { PAVE_PROXY_CONFIG: file }, headers: { authorization: `Bearer ${credential}` } }
}
