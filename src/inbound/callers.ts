/**
 * The gateway's callers, compiled once per configuration (at start and on every
 * reload, swapped whole): bearer tokens by keyed hash, JWT proofs, certificate
 * matches, `from` blocks, accounts and rules. The identity stage asks it who a
 * request comes from; the policy stage what that caller may do.
 *
 * Tokens are looked up by a keyed hash, SHA-256 over a key made at random for each
 * compilation followed by the token: how long a lookup takes depends on a value nobody
 * outside the process can compute, which tells a caller nothing about any real token
 * (the same reasoning as comparing digests with `timingSafeEqual`, at the cost of one
 * hash). The digests never leave the process, so the one thing HMAC adds over a secret
 * prefix (no length extension from a known digest) is not needed here; the one-shot
 * `crypto.hash` costs a quarter of `createHmac`'s object per request.
 */
import { hash as digest, randomBytes } from 'node:crypto'
import type { BlockList } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { CallerConfig, ClientCertProof, Config } from '../config/schema.js'
import { blockListOf, inBlockList } from '../config/cidr.js'
import { compileRules, type RuleMatcher } from './rules.js'
import { JwtProofs } from './jwt-proof.js'
import type { JwksRegistry } from './jwks.js'

/** Who a request comes from, once proved (the contract between branches). */
export interface CallerIdentity {
  readonly name: string
  readonly proof: 'token' | 'clientCert' | 'jwt'
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller the identity stage proved; `undefined` without callers configured, or on open paths. */
    caller: CallerIdentity | undefined
  }
  interface FastifyInstance {
    /** Whether `callers` is configured (the gateway mode); fixed for the life of the app. */
    callersConfigured: boolean
  }
}

/** The label of a request's caller in logs and metrics: its name; `anonymous` without callers; `unknown` when none was proved. */
export function callerLabel (request: FastifyRequest): string {
  return request.caller?.name ?? (request.server.callersConfigured ? 'unknown' : 'anonymous')
}

/** What a caller may do, reached from its identity. */
export interface CallerPolicy {
  readonly name: string
  /** `undefined`: every account. */
  readonly accounts: ReadonlySet<string> | undefined
  readonly rules: RuleMatcher
  /** `undefined`: any address. */
  readonly from: BlockList | undefined
}

export const kPolicy = Symbol('pave-proxy.callerPolicy')

/** An identity as the identity stage hands it on: the contract's two fields, and its policy under a symbol. */
export interface KnownCaller extends CallerIdentity {
  readonly [kPolicy]: CallerPolicy
}

/** One configuration's callers, compiled. */
export interface Callers {
  /** Which caller a bearer token proves; a promise when a JWT must be verified. */
  readonly byBearer: (token: string) => KnownCaller | undefined | Promise<KnownCaller | undefined>
  /** Certificate matches, in configuration order. */
  readonly certificates: ReadonlyArray<{ readonly match: ClientCertProof, readonly caller: KnownCaller }>
  /** Whether `/metrics` is open (no `metrics.callers`). */
  readonly metricsOpen: boolean
  /** Callers allowed to read `/metrics` when it is not open. */
  readonly metricsCallers: ReadonlySet<string>
  /** The length of each account's prefix, removed from the path rules are matched against. */
  readonly prefixLength: ReadonlyMap<string, number>
}

export interface CompileOptions {
  readonly jwks: JwksRegistry
  /** Default `Date.now` (the JWT checks' clock). */
  readonly now?: () => number
}

/** Compiles a configuration's callers; `undefined` without `callers`. */
export function compileCallers (config: Config, options: CompileOptions): Callers | undefined {
  if (config.callers === undefined) return undefined
  const hashKey = randomBytes(32).toString('base64')
  const hash = (token: string): string => digest('sha256', hashKey + token, 'base64')
  const tokens = new Map<string, KnownCaller>()
  const certificates: Array<{ match: ClientCertProof, caller: KnownCaller }> = []
  const jwt = new JwtProofs<KnownCaller>(options.now)
  let anyJwt = false
  for (const caller of config.callers) {
    const policy = compilePolicy(caller)
    const identity = (proof: CallerIdentity['proof']): KnownCaller => Object.freeze({ name: caller.name, proof, [kPolicy]: policy })
    if (caller.tokens !== undefined) {
      const known = identity('token')
      for (const token of caller.tokens) tokens.set(hash(token), known)
    }
    if (caller.clientCert !== undefined) certificates.push({ match: caller.clientCert, caller: identity('clientCert') })
    if (caller.jwt !== undefined) {
      jwt.add(caller.jwt, options.jwks.keysFor(caller.jwt), identity('jwt'))
      anyJwt = true
    }
  }
  return {
    byBearer (token) {
      const key = hash(token)
      const known = tokens.get(key)
      if (known !== undefined || !anyJwt) return known
      return jwt.verify(token, key)
    },
    certificates,
    metricsOpen: config.metrics?.callers === undefined,
    metricsCallers: new Set(config.metrics?.callers),
    prefixLength: new Map(config.accounts.map((a) => [a.name, a.prefix === '/' ? 0 : a.prefix.length]))
  }
}

function compilePolicy (caller: CallerConfig): CallerPolicy {
  const from = caller.from !== undefined ? blockListOf(caller.from) : undefined
  return Object.freeze({
    name: caller.name,
    accounts: caller.accounts !== undefined ? new Set(caller.accounts) : undefined,
    rules: compileRules(caller.allow ?? []),
    from
  })
}

/** Whether an address is inside a caller's `from` blocks (`::ffff:10.1.2.3` is checked as `10.1.2.3`). */
export function comesFrom (from: BlockList, address: string | undefined): boolean {
  return inBlockList(from, address)
}
