/** A tiny signing client for tests of pave-mock (the proxy is tested against it elsewhere). */
import { request } from 'undici'
import { computeToken, formatTimestamp, type PaveCredentials } from '../../src/signing/pave-token.js'
import type { PaveMock } from '../../src/mock/server.js'

export const FORBIDDEN = { message: 'Unable to validate the request, please recheck your API-Key and API-Token.' }
/** PAVE's 403 body, byte for byte as its docs print it. */
export const FORBIDDEN_TEXT = '{"message": "Unable to validate the request, please recheck your API-Key and API-Token."}'

export const ALICE: PaveCredentials = { username: 'alice-user', apiKey: 'alice-key-not-real', secret: 'alice-secret-not-real' }
export const BOB: PaveCredentials = { username: 'bob-user', apiKey: 'bob-key-not-real', secret: 'bob-secret-not-real' }

/** The three PAVE headers for an account at a time (default now). */
export function signedHeaders (account: PaveCredentials, at: Date = new Date()): Record<string, string> {
  const timestamp = formatTimestamp(at)
  return { 'API-Key': account.apiKey, 'API-Timestamp': timestamp, 'API-Token': computeToken(account, timestamp) }
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any
}

export interface CallOptions {
  /** Sign as this account (default: the mock's first account); `false` to send no PAVE headers. */
  as?: PaveCredentials | false
  /** Replaces the signing headers entirely. */
  headers?: Record<string, string>
  /** A value to send as JSON, or a string sent as is. */
  body?: unknown
}

export async function call (mock: PaveMock, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const account = options.as ?? mock.accounts[0]!
  const headers: Record<string, string> = options.headers ?? (account === false ? {} : signedHeaders(account))
  let body: string | undefined
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
  }
  const res = await request(`${mock.url}${path}`, { method: method as 'GET', headers, body })
  const text = await res.body.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.statusCode, headers: res.headers, text, json }
}
