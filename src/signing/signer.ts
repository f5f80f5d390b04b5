/**
 * The per-account cache of signed PAVE headers.
 *
 * A (timestamp, token) pair may be reused for many requests until shortly before
 * PAVE stops accepting it, so the signer keeps one signed header set per account
 * and mints a new one when the current one is `lifetime - margin` old. Time comes
 * from an injected clock plus the learned offset to the upstream's clock, so tests
 * can move time and a drifting host still signs fresh timestamps.
 */
import { LRUCache } from 'lru-cache'
import { DEFAULT_TIMESTAMP_FORMAT, computeToken, formatTimestamp, parseTimestamp, type TimestampFormat } from './pave-token.js'
import type { AccountConfig } from '../config/schema.js'

/** The three headers PAVE reads, lowercase as sent on the wire by undici. */
export interface SignedHeaders {
  readonly 'api-key': string
  readonly 'api-timestamp': string
  readonly 'api-token': string
}

export interface SignerOptions {
  /** How long PAVE accepts a token after its timestamp, in seconds. */
  readonly tokenLifetimeSeconds: number
  /** Renew this many seconds before the lifetime ends. */
  readonly refreshMarginSeconds: number
  /** Local wall clock in epoch ms. Default `Date.now`. */
  readonly now?: () => number
  /** Learned offset of the upstream's clock from the local one, in ms. Default 0. */
  readonly clockOffsetMs?: () => number
  /** Called after each new token is minted (for metrics). */
  readonly onRenew?: (account: AccountConfig) => void
  /** Most accounts kept. Default 1024. */
  readonly maxAccounts?: number
  /** How `API-Timestamp` is written; the token covers exactly that string. Default `iso-seconds`. */
  readonly timestampFormat?: TimestampFormat
}

/** A change of the learned clock offset larger than this re-mints the token at once. */
export const OFFSET_CHANGE_REMINT_MS = 2_000

interface Entry {
  readonly account: AccountConfig
  readonly headers: SignedHeaders
  /** Upstream-clock time (ms) after which this entry is renewed. */
  readonly renewAt: number
  readonly offsetAtMint: number
}

export class Signer {
  readonly #cache: LRUCache<string, Entry>
  readonly #renewAfterMs: number
  readonly #now: () => number
  readonly #offset: () => number
  readonly #onRenew: ((account: AccountConfig) => void) | undefined
  readonly #format: TimestampFormat

  constructor (options: SignerOptions) {
    this.#format = options.timestampFormat ?? DEFAULT_TIMESTAMP_FORMAT
    this.#renewAfterMs = (options.tokenLifetimeSeconds - options.refreshMarginSeconds) * 1000
    this.#now = options.now ?? Date.now
    this.#offset = options.clockOffsetMs ?? (() => 0)
    this.#onRenew = options.onRenew
    this.#cache = new LRUCache({ max: options.maxAccounts ?? 1024 })
  }

  /**
   * The signed headers for an account: the cached set while it is fresh, else a new
   * one. An account object that differs from the cached entry's (a reload changed
   * its credentials) always gets a new set, so no request mixes old and new.
   */
  sign (account: AccountConfig): SignedHeaders {
    const offset = this.#offset()
    const upstreamNow = this.#now() + offset
    const entry = this.#cache.get(account.name)
    if (entry !== undefined && entry.account === account && upstreamNow < entry.renewAt &&
        Math.abs(offset - entry.offsetAtMint) <= OFFSET_CHANGE_REMINT_MS) {
      return entry.headers
    }
    const timestamp = formatTimestamp(new Date(upstreamNow), this.#format)
    const headers: SignedHeaders = Object.freeze({
      'api-key': account.apiKey,
      'api-timestamp': timestamp,
      'api-token': computeToken({ username: account.username, apiKey: account.apiKey, secret: account.apiSecret }, timestamp)
    })
    const mintedAt = parseTimestamp(timestamp, [this.#format]) as number // <= upstreamNow (whole seconds but for iso-millis)
    this.#cache.set(account.name, { account, headers, renewAt: mintedAt + this.#renewAfterMs, offsetAtMint: offset })
    this.#onRenew?.(account)
    return headers
  }

  /** Forgets the cached token of one account, or of all. */
  invalidate (accountName?: string): void {
    if (accountName === undefined) this.#cache.clear()
    else this.#cache.delete(accountName)
  }

  /** How this signer writes `API-Timestamp`. */
  get timestampFormat (): TimestampFormat {
    return this.#format
  }

  /** The timestamp of the cached token of an account (for tests and diagnostics). */
  cachedTimestamp (accountName: string): string | undefined {
    return this.#cache.get(accountName)?.headers['api-timestamp']
  }
}
