/**
 * Callers proving themselves with a JWT (`jwt: { issuer, audience, subject, jwksFile | jwksUrl }`),
 * checked with `jose` (loaded with the first JWT caller, see `jose.ts`).
 *
 * - Only asymmetric algorithms ({@link JWT_ALGORITHMS}): never `none`, never HS*, so a
 *   public key can never be used as an HMAC secret.
 * - `exp` required; `exp`, `nbf` and `iat` honoured with {@link JWT_LEEWAY_SECONDS} of leeway.
 * - The token's unverified `iss` and `sub` only choose which caller's keys and claims to
 *   check it against; a token naming no configured caller costs no signature check.
 * - A verified token is cached by its keyed hash until its `exp`, so a caller that reuses
 *   its token (a projected service-account token lives an hour) costs a map lookup.
 */
import { LRUCache } from 'lru-cache'
import { loadJose, unverifiedClaims } from './jose.js'
import type { JwtProof } from '../config/schema.js'
import type { JwksKeys } from './jwks.js'

/** The signature algorithms accepted. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA']
/** Clock leeway for `exp`, `nbf` and `iat`. */
export const JWT_LEEWAY_SECONDS = 30
/** Most verified tokens kept; the least recently used go first. */
export const JWT_CACHE_SIZE = 10_000

interface Candidate<T> {
  readonly proof: JwtProof
  readonly keys: JwksKeys
  readonly caller: T
}

interface Verified<T> { readonly caller: T, readonly expiresAt: number }

/** The JWT callers of one configuration; `T` is what a verified token proves (a caller identity). */
export class JwtProofs<T extends object> {
  readonly #byClaims = new Map<string, Array<Candidate<T>>>()
  readonly #cache = new LRUCache<string, Verified<T>>({ max: JWT_CACHE_SIZE })
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  add (proof: JwtProof, keys: JwksKeys, caller: T): void {
    const key = claimsKey(proof.issuer, proof.subject)
    let list = this.#byClaims.get(key)
    if (list === undefined) this.#byClaims.set(key, list = [])
    list.push({ proof, keys, caller })
  }

  /**
   * The caller a token proves, or `undefined`. `hash` is the token's keyed hash (the
   * cache key). Synchronous when the token is cached or names no caller.
   */
  verify (token: string, hash: string): T | undefined | Promise<T | undefined> {
    const cached = this.#cache.get(hash)
    if (cached !== undefined) {
      if (cached.expiresAt > this.#now()) return cached.caller
      this.#cache.delete(hash)
    }
    const claims = unverifiedClaims(token)
    if (claims === undefined) return undefined
    if (typeof claims.iss !== 'string' || typeof claims.sub !== 'string') return undefined
    const candidates = this.#byClaims.get(claimsKey(claims.iss, claims.sub))
    if (candidates === undefined) return undefined
    return this.#check(token, hash, candidates)
  }

  async #check (token: string, hash: string, candidates: ReadonlyArray<Candidate<T>>): Promise<T | undefined> {
    const { jwtVerify } = await loadJose()
    for (const { proof, keys, caller } of candidates) {
      try {
        const { payload } = await jwtVerify(token, keys.getKey, {
          issuer: proof.issuer,
          audience: proof.audience,
          subject: proof.subject,
          algorithms: JWT_ALGORITHMS,
          clockTolerance: JWT_LEEWAY_SECONDS,
          requiredClaims: ['exp'],
          currentDate: new Date(this.#now())
        })
        // jose checks `iat` only with a maximum token age: a token issued in the future proves nothing.
        if (payload.iat !== undefined && payload.iat > this.#now() / 1000 + JWT_LEEWAY_SECONDS) continue
        this.#cache.set(hash, { caller, expiresAt: (payload.exp as number) * 1000 })
        return caller
      } catch {
        // Not this caller's token (bad signature, claims, algorithm, key): try the next one.
      }
    }
    return undefined
  }
}

function claimsKey (issuer: string, subject: string): string {
  return `${issuer}\n${subject}`
}
