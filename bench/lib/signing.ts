/**
 * The bench's PAVE credentials (fake, loopback only) and the signing every
 * contender does: the three headers of API.md, HMAC-SHA256 from
 * src/signing/pave-token.ts. Like pave-proxy's signer, the Node contenders reuse
 * one (timestamp, token) pair for a while (API.md allows it) instead of paying one
 * HMAC per request; nginx/njs cannot keep state between requests and signs each one.
 */
import { computeToken, formatTimestamp, parseTimestamp, type PaveCredentials } from '../../src/signing/pave-token.js'

export const BENCH_CREDENTIALS: PaveCredentials = Object.freeze({
  username: 'bench-user',
  apiKey: 'bench-key-not-real',
  secret: 'bench-secret-not-real'
})

/** A pair is re-minted when this old: far inside PAVE's 5-minute lifetime. */
export const BENCH_PAIR_REUSE_MS = 60_000

export interface SignedHeaders {
  'api-key': string
  'api-timestamp': string
  'api-token': string
}

/** Returns the current signed headers, minting a new pair when the cached one is old. */
export function createSigner (credentials: PaveCredentials = BENCH_CREDENTIALS): () => SignedHeaders {
  let mintedAt = -Infinity
  let headers: SignedHeaders | undefined
  return () => {
    const now = Date.now()
    if (headers === undefined || now - mintedAt >= BENCH_PAIR_REUSE_MS) {
      const timestamp = formatTimestamp(new Date(now))
      headers = { 'api-key': credentials.apiKey, 'api-timestamp': timestamp, 'api-token': computeToken(credentials, timestamp) }
      mintedAt = now
    }
    return headers
  }
}

/** Headers signed for this very moment (what an app calling PAVE itself would do per call). */
export function signNow (credentials: PaveCredentials = BENCH_CREDENTIALS): SignedHeaders {
  const timestamp = formatTimestamp(new Date())
  return { 'api-key': credentials.apiKey, 'api-timestamp': timestamp, 'api-token': computeToken(credentials, timestamp) }
}

/**
 * What an upstream would say of a request's PAVE headers: an empty list when they
 * are exactly one valid, fresh set; otherwise the problems. `rawHeaders` is Node's
 * flat [name, value, …] list, so duplicates are seen.
 */
export function checkSignature (rawHeaders: readonly string[], credentials: PaveCredentials = BENCH_CREDENTIALS, now = Date.now()): string[] {
  const values = new Map<string, string[]>()
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase()
    if (name === 'api-key' || name === 'api-timestamp' || name === 'api-token') {
      values.set(name, [...(values.get(name) ?? []), rawHeaders[i + 1] as string])
    }
  }
  const problems: string[] = []
  const one = (name: string): string | undefined => {
    const list = values.get(name) ?? []
    if (list.length !== 1) problems.push(`${name}: ${list.length} values`)
    return list[0]
  }
  const key = one('api-key')
  const timestamp = one('api-timestamp')
  const token = one('api-token')
  if (problems.length > 0) return problems
  if (key !== credentials.apiKey) problems.push('api-key: not the account key')
  const at = parseTimestamp(timestamp ?? '')
  if (at === undefined) problems.push('api-timestamp: not YYYY-MM-DDTHH:MM:SSZ')
  else if (Math.abs(now - at) > 5 * 60_000) problems.push('api-timestamp: more than 5 minutes away')
  if (timestamp !== undefined && token !== computeToken(credentials, timestamp)) problems.push('api-token: wrong HMAC')
  return problems
}
