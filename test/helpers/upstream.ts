/**
 * A real HTTP upstream for tests: verifies PAVE signatures the way PAVE documents
 * them, records exactly what it received, and answers with a handler of the test's.
 */
import { createServer, type IncomingMessage, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHash, timingSafeEqual } from 'node:crypto'
import { computeToken, parseTimestamp, type TimestampFormat } from '../../src/signing/pave-token.js'

/** `label` (default: the username) is what `signedBy` reports, to tell rotated secrets apart. */
export interface TestAccount { username: string, apiKey: string, secret: string, label?: string }

export interface ReceivedRequest {
  method: string
  /** The request target exactly as it arrived on the wire. */
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  /** The body's bytes (left empty when the upstream only digests bodies). */
  body: Buffer
  /** With `digestBody`: the sha256 (hex) and length of the body, counted as it streamed in. */
  bodySha256?: string
  bodyLength?: number
  /** Whether the signature verified, and for which username. */
  signedBy: string | undefined
}

export type Handler = (req: IncomingMessage, res: ServerResponse, received: ReceivedRequest) => void

export interface TestUpstream {
  url: string
  port: number
  received: ReceivedRequest[]
  server: Server
  close: () => Promise<void>
}

export const FORBIDDEN_BODY = '{"message": "Unable to validate the request, please recheck your API-Key and API-Token."}'

/** Verifies the three PAVE headers (`API-Timestamp` in one of `formats`, default iso-seconds); returns the username that signed, or undefined. */
export function verifySignature (headers: IncomingHttpHeaders, accounts: TestAccount[], now: number, lifetimeMs = 300_000, formats?: readonly TimestampFormat[]): string | undefined {
  const key = headers['api-key']
  const timestamp = headers['api-timestamp']
  const token = headers['api-token']
  if (typeof key !== 'string' || typeof timestamp !== 'string' || typeof token !== 'string') return undefined
  const at = parseTimestamp(timestamp, formats)
  if (at === undefined || Math.abs(now - at) > lifetimeMs) return undefined
  const given = Buffer.from(token)
  // Several entries may share a key (a secret being rotated): any one that verifies signs.
  for (const account of accounts.filter((a) => a.apiKey === key)) {
    const expected = Buffer.from(computeToken(account, timestamp))
    if (expected.length === given.length && timingSafeEqual(expected, given)) return account.label ?? account.username
  }
  return undefined
}

/** A handler answering 403 with PAVE's body when unsigned, else JSON echoing what arrived. */
export const echoHandler: Handler = (_req, res, received) => {
  if (received.signedBy === undefined) {
    res.writeHead(403, { 'content-type': 'application/json' }).end(FORBIDDEN_BODY)
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ method: received.method, url: received.url, signedBy: received.signedBy, bytes: received.body.length }))
}

export interface UpstreamOptions {
  accounts?: TestAccount[]
  handler?: Handler
  /** Read the body before calling the handler (default true). */
  bufferBody?: boolean
  /** Hash the body as it streams in instead of keeping it: `bodySha256` and `bodyLength` (default false). */
  digestBody?: boolean
  now?: () => number
  /** The `API-Timestamp` forms accepted. Default `['iso-seconds']`. */
  timestampFormats?: readonly TimestampFormat[]
}

export const ACCOUNT: TestAccount = { username: 'test-user', apiKey: 'test-key-not-real', secret: 'test-secret-not-real-0123456789' }

export async function startUpstream (options: UpstreamOptions = {}): Promise<TestUpstream> {
  const accounts = options.accounts ?? [ACCOUNT]
  const handler = options.handler ?? echoHandler
  const now = options.now ?? Date.now
  const received: ReceivedRequest[] = []
  const server = createServer((req, res) => {
    const record: ReceivedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      signedBy: verifySignature(req.headers, accounts, now(), 300_000, options.timestampFormats)
    }
    received.push(record)
    if (options.bufferBody === false) {
      handler(req, res, record)
      return
    }
    if (options.digestBody === true) {
      const hash = createHash('sha256')
      let length = 0
      req.on('data', (chunk: Buffer) => { hash.update(chunk); length += chunk.length })
      req.on('end', () => {
        record.bodySha256 = hash.digest('hex')
        record.bodyLength = length
        handler(req, res, record)
      })
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      record.body = Buffer.concat(chunks)
      handler(req, res, record)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/**
 * A deterministic body of any size: byte i is `i % 251` (a prime period, so a chunk
 * lost, repeated or moved changes the digest). Every client program builds the same bytes.
 */
const PATTERN_BLOCK = Buffer.from(Array.from({ length: 251 * 261 }, (_v, i) => i % 251))

/** The deterministic body's chunks, in order (a block of about 64 KiB at a time). */
export function * patternChunks (size: number): Generator<Buffer> {
  for (let sent = 0; sent < size; sent += PATTERN_BLOCK.length) {
    yield sent + PATTERN_BLOCK.length <= size ? PATTERN_BLOCK : PATTERN_BLOCK.subarray(0, size - sent)
  }
}

const patternDigests = new Map<number, string>()
/** sha256 (hex) of the deterministic body of `size` bytes. */
export function patternSha256 (size: number): string {
  let digest = patternDigests.get(size)
  if (digest === undefined) {
    const hash = createHash('sha256')
    for (const chunk of patternChunks(size)) hash.update(chunk)
    digest = hash.digest('hex')
    patternDigests.set(size, digest)
  }
  return digest
}

/** Streams the deterministic body of `size` bytes into `out` with backpressure, then ends it. */
export function writePattern (out: NodeJS.WritableStream, size: number): void {
  const chunks = patternChunks(size)
  const next = (): void => {
    for (let step = chunks.next(); step.done !== true; step = chunks.next()) {
      if (!out.write(step.value)) { out.once('drain', next); return }
    }
    out.end()
  }
  next()
}
