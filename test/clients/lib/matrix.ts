/**
 * The client matrix (issue 11): the operations every client performs through the proxy,
 * the upstream that checks them, and the assertions on both ends.
 *
 * A client requests `/v1/clients/<client>/<op>`; the upstream verifies the signature,
 * digests the body as it streams in, answers the operation's own status (distinct per
 * operation, so a status that is not passed through exactly is seen) and records what it
 * sent. The client reports what it saw as one JSON line per operation.
 */
import { createGzip } from 'node:zlib'
import { createHash } from 'node:crypto'
import type { Test } from 'tap'
import { ACCOUNT, FORBIDDEN_BODY, patternSha256, startUpstream, writePattern, type ReceivedRequest, type TestUpstream } from '../../helpers/upstream.js'
import { startProxy, type TestProxy } from '../../helpers/proxy.js'

export const MiB = 1024 * 1024

export type Op = 'get' | 'post' | 'post2m' | 'put' | 'delete' | 'upload' | 'head' | 'download' | 'creds' | 'expect'

export const ALL_OPS: readonly Op[] = ['get', 'post', 'post2m', 'put', 'delete', 'upload', 'head', 'download', 'creds', 'expect']

/**
 * What each operation sends and what the upstream answers.
 * Request bodies: `small` is the ASCII JSON `{"op":"<op>"}`; a number is that many
 * bytes of the deterministic pattern (byte i = i % 251).
 */
export const SPEC: Record<Op, { method: string, status: number, request: 'none' | 'small' | number, response: 'json' | 'none' | 'download' }> = {
  get: { method: 'GET', status: 200, request: 'none', response: 'json' },
  post: { method: 'POST', status: 201, request: 'small', response: 'json' },
  post2m: { method: 'POST', status: 202, request: 2 * MiB, response: 'json' },
  put: { method: 'PUT', status: 203, request: 'small', response: 'json' },
  delete: { method: 'DELETE', status: 204, request: 'none', response: 'none' },
  // sent chunked, without Content-Length
  upload: { method: 'POST', status: 207, request: 5 * MiB, response: 'json' },
  head: { method: 'HEAD', status: 200, request: 'none', response: 'none' },
  download: { method: 'GET', status: 200, request: 'none', response: 'download' },
  // carries the caller's own fake API-Key / API-Token / API-Timestamp
  creds: { method: 'GET', status: 208, request: 'none', response: 'json' },
  // sent with `Expect: 100-continue`
  expect: { method: 'POST', status: 226, request: 2 * MiB, response: 'json' }
}

export const DOWNLOAD_SIZE = 20 * MiB
/** The Content-Length the upstream announces for HEAD. */
export const HEAD_LENGTH = 4242
/** The fake credentials the `creds` operation sends; none of them may reach the upstream. */
export const FAKE = { key: 'fake-key-from-caller', token: 'fake-token-from-caller', timestamp: '2001-02-03T04:05:06Z' }

/** What one client reported for one operation. */
export interface ClientResult {
  op: Op
  status?: number
  /** Bytes of the response body as the client's API handed them over (decoded). */
  length?: number
  sha256?: string
  /** The Content-Length header the client saw (HEAD). */
  contentLength?: number | string | null
  /** Whether the client saw the proxy's `100 Continue` (where its API shows it). */
  continued?: boolean
  /** The client could not do this operation (with the reason): reported as skipped. */
  skip?: string
  error?: string
}

/** What the upstream received and answered for one matrix request. */
export interface MatrixRecord {
  client: string
  op: string
  request: ReceivedRequest
  status: number
  /** sha256 and length of the response body before any content coding. */
  responseSha256: string
  responseLength: number
  /** `gzip` when the upstream compressed the body because the client asked for it. */
  encoding: string | undefined
}

export interface Matrix {
  upstream: TestUpstream
  proxy: TestProxy
  records: MatrixRecord[]
  close: () => Promise<void>
}

function digest (bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export function smallBody (op: string): string {
  return `{"op":"${op}"}`
}

/** Starts the checking upstream and a proxy in front of it. */
export async function startMatrix (): Promise<Matrix> {
  const records: MatrixRecord[] = []
  const upstream = await startUpstream({
    digestBody: true,
    handler: (req, res, received) => {
      const match = /^\/v1\/clients\/([^/]+)\/([a-z0-9]+)$/.exec(received.url)
      if (received.signedBy === undefined || match === null || !(match[2]! in SPEC)) {
        res.writeHead(received.signedBy === undefined ? 403 : 404, { 'content-type': 'application/json' }).end(FORBIDDEN_BODY)
        return
      }
      const client = match[1]!
      const op = match[2] as Op
      const spec = SPEC[op]
      const accepted = String(req.headers['accept-encoding'] ?? '')
      const gzip = spec.response !== 'none' && /\bgzip\b/.test(accepted)
      const record: MatrixRecord = { client, op, request: received, status: spec.status, responseSha256: digest(''), responseLength: 0, encoding: gzip ? 'gzip' : undefined }
      records.push(record)
      const headers: Record<string, string | number> = {}
      if (gzip) headers['content-encoding'] = 'gzip'
      if (spec.response === 'none') {
        if (op === 'head') headers['content-length'] = HEAD_LENGTH
        res.writeHead(spec.status, headers).end()
        return
      }
      let out: NodeJS.WritableStream = res
      if (gzip) {
        const zip = createGzip({ level: 1 })
        zip.pipe(res)
        out = zip
      }
      if (spec.response === 'download') {
        record.responseSha256 = patternSha256(DOWNLOAD_SIZE)
        record.responseLength = DOWNLOAD_SIZE
        res.writeHead(spec.status, { ...headers, 'content-type': 'application/octet-stream' })
        writePattern(out, DOWNLOAD_SIZE)
        return
      }
      const body = JSON.stringify({ client, op, method: received.method, length: received.bodyLength, sha256: received.bodySha256 })
      record.responseSha256 = digest(body)
      record.responseLength = Buffer.byteLength(body)
      res.writeHead(spec.status, { ...headers, 'content-type': 'application/json' })
      out.end(body)
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  return { upstream, proxy, records, close: async () => { await proxy.close(); await upstream.close() } }
}

/** The sha256 and length a request body of this operation must arrive with. */
export function expectedRequest (op: Op): { sha256: string, length: number } {
  const request = SPEC[op].request
  if (request === 'none') return { sha256: digest(''), length: 0 }
  if (request === 'small') return { sha256: digest(smallBody(op)), length: smallBody(op).length }
  return { sha256: patternSha256(request), length: request }
}

export interface CheckOptions {
  /** Operations this client variant does not perform at all (not in its row), with the reason. */
  notApplicable?: Partial<Record<Op, string>>
  /** Extra per-operation assertions on the upstream's record. */
  extra?: (t: Test, op: Op, record: MatrixRecord, result: ClientResult) => void
}

/**
 * One subtest per operation: the client's line, the upstream's record of it, and
 * that both ends agree (signature, body bytes, status, response bytes). Ends with the
 * client's row of the matrix as a comment (`matrix: <client> | get pass | …`).
 */
export async function checkResults (t: Test, matrix: Matrix, client: string, ops: readonly Op[], results: ClientResult[], options: CheckOptions = {}): Promise<void> {
  const cells: string[] = []
  for (const op of ALL_OPS) {
    const result = results.find((r) => r.op === op)
    const records = matrix.records.filter((r) => r.client === client && r.op === op)
    const name = `${client} ${op}`
    const notApplicable = options.notApplicable?.[op]
    if (notApplicable !== undefined || !ops.includes(op)) {
      cells.push(`${op} n/a`)
      await t.test(name, { skip: notApplicable ?? 'not run' }, () => {})
      continue
    }
    if (result?.skip !== undefined) {
      cells.push(`${op} skipped`)
      await t.test(name, { skip: result.skip }, () => {})
      continue
    }
    const outcome = await t.test(name, async (t) => {
      if (result === undefined) { t.fail('the client reported nothing for this operation'); return }
      if (result.error !== undefined) { t.fail(`the client failed: ${result.error}`, { status: result.status }); return }
      t.equal(records.length, 1, 'the upstream received it once')
      const record = records[0]
      if (record === undefined) { t.fail('no upstream record', { status: result.status }); return }
      const spec = SPEC[op]
      const received = record.request
      t.equal(received.method, spec.method, 'method')
      t.equal(received.signedBy, ACCOUNT.username, 'signed with the account key')
      t.equal(received.headers['api-key'], ACCOUNT.apiKey, 'the account API-Key')
      const wanted = expectedRequest(op)
      t.equal(received.bodyLength, wanted.length, 'request body length at the upstream')
      t.equal(received.bodySha256, wanted.sha256, 'request body sha256 at the upstream')
      t.equal(received.headers.expect, undefined, 'Expect is answered for this hop, not forwarded')
      t.equal(result.status, record.status, 'the caller sees the status the upstream sent')
      t.equal(result.status, spec.status, `status ${spec.status}`)
      if (op === 'head') {
        t.equal(Number(result.contentLength), HEAD_LENGTH, 'HEAD: the announced Content-Length')
        t.equal(result.length ?? 0, 0, 'HEAD: no body')
      } else {
        t.equal(result.length, record.responseLength, 'response length at the caller')
        t.equal(result.sha256, record.responseSha256, 'response sha256 at the caller')
      }
      if (op === 'expect' && result.continued !== undefined) t.equal(result.continued, true, 'the client saw 100 Continue before sending the body')
      if (op === 'creds') {
        const values = received.rawHeaders.filter((_v, i) => i % 2 === 1)
        for (const fake of [FAKE.key, FAKE.token, FAKE.timestamp]) t.notOk(values.some((v) => v.includes(fake)), `the caller's ${fake} never reaches the upstream`)
        t.equal(received.rawHeaders.filter((v, i) => i % 2 === 0 && /^api[-_](key|token|timestamp)$/i.test(v)).length, 3, 'exactly one of each PAVE header')
      }
      options.extra?.(t, op, record, result)
    })
    cells.push(`${op} ${outcome?.ok === true ? 'pass' : 'FAILED'}`)
  }
  t.comment(`matrix: ${client} | ${cells.join(' | ')}`)
}

/** Parses a client program's JSON lines; anything else on stdout fails the test. */
export function parseResults (t: Test, stdout: string): ClientResult[] {
  const results: ClientResult[] = []
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue
    try {
      results.push(JSON.parse(line) as ClientResult)
    } catch {
      t.fail(`not a JSON line: ${line.slice(0, 200)}`)
    }
  }
  return results
}
