/**
 * PAVE request signing, as pure functions.
 *
 * PAVE authenticates every call with three headers: `API-Key`, `API-Timestamp`
 * (UTC, `YYYY-MM-DDTHH:MM:SSZ`) and `API-Token`, the lowercase hex HMAC-SHA256 of
 * `<username>:<api_key>@<timestamp>` keyed with the API secret.
 */
import { createHmac } from 'node:crypto'

/** What it takes to sign for one PAVE account. */
export interface PaveCredentials {
  /** The primary account name PAVE gave the customer. */
  readonly username: string
  /** The account's API key (identifies the account; not secret on its own). */
  readonly apiKey: string
  /** The account's API secret: the HMAC key. Never logged. */
  readonly secret: string
}

/** The header names PAVE reads, in the lowercase form Node uses for incoming headers. */
export const PAVE_HEADER_NAMES = ['api-key', 'api-timestamp', 'api-token'] as const

/** `2023-02-11T12:00:00Z`: exactly 20 characters, no milliseconds, literal `Z`. */
export const PAVE_TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/

/** Formats a date as PAVE's timestamp: UTC, whole seconds (truncated), literal `Z`. */
export function formatTimestamp (date: Date): string {
  const iso = date.toISOString() // 2023-02-11T12:00:00.123Z (or ±YYYYYY- outside years 0..9999)
  if (iso.length !== 24) throw new RangeError('timestamp year out of range 0000-9999')
  return iso.slice(0, 19) + 'Z'
}

/**
 * Parses a PAVE timestamp back to epoch milliseconds; `undefined` when it is not
 * exactly of the form `YYYY-MM-DDTHH:MM:SSZ` or names a date that does not exist.
 */
export function parseTimestamp (value: string): number | undefined {
  if (!PAVE_TIMESTAMP_PATTERN.test(value)) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms) || formatTimestamp(new Date(ms)) !== value) return undefined
  return ms
}

/** The message PAVE's HMAC covers: `<username>:<api_key>@<timestamp>`. */
export function tokenMessage (credentials: Omit<PaveCredentials, 'secret'>, timestamp: string): string {
  return `${credentials.username}:${credentials.apiKey}@${timestamp}`
}

/** Lowercase hex HMAC-SHA256 of the token message, keyed with the secret. */
export function computeToken (credentials: PaveCredentials, timestamp: string): string {
  return createHmac('sha256', credentials.secret)
    .update(tokenMessage(credentials, timestamp), 'utf8')
    .digest('hex')
}
