/**
 * PAVE's signature check, as its docs describe it: a known `API-Key`, an
 * `API-Timestamp` of the form `YYYY-MM-DDTHH:MM:SSZ` (or another accepted form) within the token lifetime of
 * the server's clock (either direction), and an `API-Token` equal to the HMAC for
 * that account, compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { DEFAULT_TIMESTAMP_FORMAT, computeToken, parseTimestamp, type TimestampFormat } from '../signing/pave-token.js'
import type { MockAccount } from './accounts.js'

/** The message PAVE answers a request it cannot authenticate with, status 403. */
export const FORBIDDEN_MESSAGE = 'Unable to validate the request, please recheck your API-Key and API-Token.'
/** PAVE's 403 body, byte for byte as its docs print it. */
export const FORBIDDEN_BODY = `{"message": "${FORBIDDEN_MESSAGE}"}`

/** Why a request was refused. Logged and recorded; never sent (PAVE's 403 body is the same for all). */
export type RejectReason =
  | 'missing-headers'
  | 'unknown-api-key'
  | 'malformed-timestamp'
  | 'stale-timestamp'
  | 'future-timestamp'
  | 'wrong-token'
  | 'missing-access-token'
  | 'unknown-access-token'

export type Verdict =
  | { readonly ok: true, readonly account: MockAccount }
  | { readonly ok: false, readonly reason: RejectReason, readonly account?: MockAccount | undefined }

/**
 * Checks the three PAVE headers of a request.
 *
 * @param accounts the known accounts, by API key
 * @param nowMs the server's clock, epoch ms
 * @param lifetimeMs how far the timestamp may be from `nowMs`, either way
 * @param formats the forms of `API-Timestamp` accepted (default `iso-seconds`, the written contract)
 */
export function verifyRequest (headers: IncomingHttpHeaders, accounts: ReadonlyMap<string, MockAccount>, nowMs: number, lifetimeMs: number,
  formats: readonly TimestampFormat[] = [DEFAULT_TIMESTAMP_FORMAT]): Verdict {
  const apiKey = headers['api-key']
  const timestamp = headers['api-timestamp']
  const token = headers['api-token']
  if (typeof apiKey !== 'string' || typeof timestamp !== 'string' || typeof token !== 'string' ||
    apiKey === '' || timestamp === '' || token === '') {
    return { ok: false, reason: 'missing-headers' }
  }
  const account = accounts.get(apiKey)
  if (account === undefined) return { ok: false, reason: 'unknown-api-key' }
  const at = parseTimestamp(timestamp, formats)
  if (at === undefined) return { ok: false, reason: 'malformed-timestamp', account }
  if (nowMs - at > lifetimeMs) return { ok: false, reason: 'stale-timestamp', account }
  if (at - nowMs > lifetimeMs) return { ok: false, reason: 'future-timestamp', account }
  if (!tokensEqual(computeToken(account, timestamp), token)) return { ok: false, reason: 'wrong-token', account }
  return { ok: true, account }
}

/** Constant-time comparison of the expected token with the one given (whose length is no secret). */
export function tokensEqual (expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8')
  const b = Buffer.from(given, 'utf8')
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * PAVE's v2 check: `API-Access-Token` holds a known API key ("Your API key", as PAVE's
 * docs put it); no timestamp or token is involved.
 */
export function verifyAccessToken (headers: IncomingHttpHeaders, accounts: ReadonlyMap<string, MockAccount>): Verdict {
  const token = headers['api-access-token']
  if (typeof token !== 'string' || token === '') return { ok: false, reason: 'missing-access-token' }
  const account = accounts.get(token)
  return account === undefined ? { ok: false, reason: 'unknown-access-token' } : { ok: true, account }
}
