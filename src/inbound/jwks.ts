/**
 * The public keys JWT callers are checked against, one key set per JWKS file or
 * URL, shared by every caller that names it and kept across reloads.
 *
 * A token whose `kid` is unknown re-reads the JWKS, at most once per
 * {@link DEFAULT_JWKS_REFRESH_INTERVAL_MS} per source (so a flood of made-up `kid`s
 * costs one read per interval, not one per request); keys older than
 * {@link DEFAULT_JWKS_MAX_AGE_MS} are re-read in the background. A read that fails
 * or yields no valid JWKS keeps the last good keys.
 */
import type { JWSHeaderParameters, FlattenedJWSInput, JSONWebKeySet, CryptoKey } from 'jose'
import { loadJose } from './jose.js'
import { publicJwks } from '../config/callers.js'
import type { JsonWebKeySetConfig, JwtProof } from '../config/schema.js'

/** Shortest time between two reads of one JWKS caused by unknown `kid`s. */
export const DEFAULT_JWKS_REFRESH_INTERVAL_MS = 30_000
/** Keys older than this are re-read in the background when next used. */
export const DEFAULT_JWKS_MAX_AGE_MS = 600_000

export interface JwksOptions {
  /** Reads a JWKS file (UTF-8). */
  readonly readFile: (path: string) => Promise<string>
  /** Fetches a JWKS URL; resolves with the parsed JSON. */
  readonly fetchUrl: (url: string) => Promise<unknown>
  /** Default {@link DEFAULT_JWKS_REFRESH_INTERVAL_MS}. */
  readonly refreshIntervalMs?: number
  /** Default {@link DEFAULT_JWKS_MAX_AGE_MS}. */
  readonly maxAgeMs?: number
  /** Told when a read failed (the last good keys stay): the source's file or URL without query, and why. */
  readonly onRefreshFailed: (source: string, reason: string) => void
  /** Default `Date.now`. */
  readonly now?: () => number
}

type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>

/** One JWKS source's keys. */
export class JwksKeys {
  readonly #load: () => Promise<unknown>
  readonly #label: string
  readonly #options: JwksOptions
  readonly #interval: number
  readonly #maxAge: number
  readonly #now: () => number
  /** The last good key set, and its resolver (made by jose when first needed). */
  #jwks: JsonWebKeySetConfig | undefined
  #keys: KeyResolver | undefined
  #loadedAt = 0
  #lastRead = Number.NEGATIVE_INFINITY
  #reading: Promise<void> | undefined

  constructor (load: () => Promise<unknown>, label: string, options: JwksOptions) {
    this.#load = load
    this.#label = label
    this.#options = options
    this.#interval = options.refreshIntervalMs ?? DEFAULT_JWKS_REFRESH_INTERVAL_MS
    this.#maxAge = options.maxAgeMs ?? DEFAULT_JWKS_MAX_AGE_MS
    this.#now = options.now ?? Date.now
  }

  /** Whether any key was ever loaded. */
  get loaded (): boolean {
    return this.#jwks !== undefined
  }

  /** Replaces the keys with a set already read and checked (the configuration's). */
  replace (jwks: JsonWebKeySetConfig): void {
    this.#jwks = jwks
    this.#keys = undefined
    this.#loadedAt = this.#now()
    void loadJose() // loading already, for the first token
  }

  async #resolver (): Promise<KeyResolver | undefined> {
    if (this.#jwks === undefined) return undefined
    const { createLocalJWKSet } = await loadJose()
    // Read after the wait: a refresh may have replaced the set meanwhile.
    return (this.#keys ??= createLocalJWKSet(this.#jwks as unknown as JSONWebKeySet))
  }

  /** Reads the source now unless it was read less than the interval ago; never rejects. */
  refresh (): Promise<void> {
    if (this.#reading !== undefined) return this.#reading
    const now = this.#now()
    if (now - this.#lastRead < this.#interval) return Promise.resolve()
    this.#lastRead = now
    this.#reading = this.#load().then((value) => {
      const jwks = publicJwks(value)
      if (typeof jwks === 'string') throw new Error(`the JWKS ${jwks}`)
      this.replace(jwks)
    }).catch((error: unknown) => {
      this.#options.onRefreshFailed(this.#label, error instanceof Error ? error.message : String(error))
    }).finally(() => {
      this.#reading = undefined
    })
    return this.#reading
  }

  /** The key resolver `jwtVerify` calls: an unknown `kid` re-reads the source (rate-limited) and tries once more. */
  readonly getKey: KeyResolver = async (header, token) => {
    const { errors } = await loadJose()
    if (this.#reading !== undefined) await this.#reading
    if (this.#jwks !== undefined && this.#now() - this.#loadedAt > this.#maxAge) void this.refresh()
    const keys = await this.#resolver()
    if (keys !== undefined) {
      try {
        return await keys(header, token)
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey)) throw error
      }
    }
    await this.refresh()
    const refreshed = await this.#resolver()
    if (refreshed === undefined) throw new errors.JWKSNoMatchingKey()
    return await refreshed(header, token)
  }
}

/** Every JWKS source in use, by file or URL; kept across reloads so a URL's keys are not fetched again. */
export class JwksRegistry {
  readonly #options: JwksOptions
  readonly #sources = new Map<string, JwksKeys>()

  constructor (options: JwksOptions) {
    this.#options = options
  }

  /** The keys a JWT proof names; a file's keys are the ones the configuration just read. */
  keysFor (jwt: JwtProof): JwksKeys {
    const id = jwt.jwksUrl !== undefined ? `url ${jwt.jwksUrl}` : `file ${jwt.jwksFile as string}`
    let keys = this.#sources.get(id)
    if (keys === undefined) {
      const url = jwt.jwksUrl
      keys = url !== undefined
        ? new JwksKeys(async () => await this.#options.fetchUrl(url), withoutQuery(url), this.#options)
        : new JwksKeys(async () => JSON.parse(await this.#options.readFile(jwt.jwksFile as string)) as unknown, jwt.jwksFile as string, this.#options)
      this.#sources.set(id, keys)
    }
    if (jwt.jwks !== undefined) keys.replace(jwt.jwks)
    else if (!keys.loaded) void keys.refresh()
    return keys
  }
}

function withoutQuery (url: string): string {
  const parsed = new URL(url)
  return `${parsed.origin}${parsed.pathname}`
}
