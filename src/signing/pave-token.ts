/**
 * PAVE request signing, as pure functions.
 *
 * PAVE authenticates every call with three headers: `API-Key`, `API-Timestamp`
 * (UTC, `YYYY-MM-DDTHH:MM:SSZ` by contract; see {@link TIMESTAMP_FORMATS}) and
 * `API-Token`, the lowercase hex HMAC-SHA256 of `<username>:<api_key>@<timestamp>`
 * keyed with the API secret, where `<timestamp>` is exactly the string sent.
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

/**
 * The forms of `API-Timestamp` PAVE's pages use. `iso-seconds` is the written
 * contract (and the default); the others appear in PAVE's own samples and in
 * public client code:
 * - `iso-seconds` `2023-02-11T12:00:00Z`
 * - `iso-millis` `2023-02-11T12:00:00.000Z` (JavaScript's `toJSON()`)
 * - `unix-seconds` `1676116800`
 * - `rfc1123` `Sat, 11 Feb 2023 12:00:00 GMT` (JavaScript's `toUTCString()`)
 */
export const TIMESTAMP_FORMATS = ['iso-seconds', 'iso-millis', 'unix-seconds', 'rfc1123'] as const
export type TimestampFormat = typeof TIMESTAMP_FORMATS[number]
export const DEFAULT_TIMESTAMP_FORMAT: TimestampFormat = 'iso-seconds'

const SHAPES: Readonly<Record<TimestampFormat, RegExp>> = {
  'iso-seconds': PAVE_TIMESTAMP_PATTERN,
  'iso-millis': /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/,
  'unix-seconds': /^\d{1,12}$/,
  rfc1123: /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/
}

/**
 * Formats a date as an `API-Timestamp`, UTC, in one of {@link TIMESTAMP_FORMATS}
 * (default `iso-seconds`: whole seconds, truncated, literal `Z`). Years outside
 * 0000-9999 are refused.
 */
export function formatTimestamp (date: Date, format: TimestampFormat = DEFAULT_TIMESTAMP_FORMAT): string {
  const iso = date.toISOString() // 2023-02-11T12:00:00.123Z (or ±YYYYYY- outside years 0..9999)
  if (iso.length !== 24) throw new RangeError('timestamp year out of range 0000-9999')
  switch (format) {
    case 'iso-seconds': return iso.slice(0, 19) + 'Z'
    case 'iso-millis': return iso
    case 'unix-seconds': return String(Math.floor(date.getTime() / 1000))
    case 'rfc1123': return date.toUTCString()
  }
}

/**
 * Parses an `API-Timestamp` back to epoch milliseconds when it is exactly one of
 * the given forms (default: `iso-seconds` only) and names a date that exists;
 * `undefined` otherwise.
 */
export function parseTimestamp (value: string, formats: readonly TimestampFormat[] = [DEFAULT_TIMESTAMP_FORMAT]): number | undefined {
  const format = timestampFormatOf(value)
  return format !== undefined && formats.includes(format) ? parseAs(value, format) : undefined
}

/** Which form a timestamp is written in, if it is exactly one of {@link TIMESTAMP_FORMATS}. */
export function timestampFormatOf (value: string): TimestampFormat | undefined {
  return TIMESTAMP_FORMATS.find((format) => SHAPES[format].test(value) && parseAs(value, format) !== undefined)
}

function parseAs (value: string, format: TimestampFormat): number | undefined {
  const ms = format === 'unix-seconds' ? Number(value) * 1000 : Date.parse(value)
  // A date that does not exist (Feb 30, 25:00) parses to NaN or to another day: the round trip tells.
  if (Number.isNaN(ms) || ms > MAX_TIMESTAMP_MS || formatTimestamp(new Date(ms), format) !== value) return undefined
  return ms
}

/** The end of year 9999, the last instant every form can write. */
const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

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
