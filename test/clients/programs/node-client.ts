/**
 * Client matrix program for Node's own clients: `fetch`, axios, `node:http`.
 * Usage: node --import tsx node-client.ts <fetch|axios|http> <base URL> <op,op,…>
 * Prints one JSON line per operation: {op, status, length, sha256, contentLength, continued} or {op, error}.
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import { Readable } from 'node:stream'
import axios from 'axios'

const [client, base, opList] = process.argv.slice(2) as [string, string, string]
const MiB = 1024 * 1024
const FAKE = { 'API-Key': 'fake-key-from-caller', 'API-Token': 'fake-token-from-caller', 'API-Timestamp': '2001-02-03T04:05:06Z' }
const BLOCK = Buffer.from(Array.from({ length: 251 * 261 }, (_v, i) => i % 251))

/** The deterministic body: byte i is i % 251. */
function * pattern (size: number): Generator<Buffer> {
  for (let sent = 0; sent < size; sent += BLOCK.length) yield BLOCK.subarray(0, Math.min(BLOCK.length, size - sent))
}
const bytes = (size: number): Buffer => Buffer.concat([...pattern(size)])
const small = (op: string): Buffer => Buffer.from(`{"op":"${op}"}`)

interface Request { method: string, headers: Record<string, string>, body?: Buffer | (() => Generator<Buffer>) }
interface Seen { status: number, length: number, sha256: string, contentLength?: string | null, continued?: boolean }

function request (op: string): Request {
  const json = { 'content-type': 'application/json' }
  const binary = { 'content-type': 'application/octet-stream' }
  switch (op) {
    case 'get': case 'download': case 'head': case 'delete':
      return { method: op === 'head' ? 'HEAD' : op === 'delete' ? 'DELETE' : 'GET', headers: {} }
    case 'creds': return { method: 'GET', headers: FAKE }
    case 'post': return { method: 'POST', headers: json, body: small(op) }
    case 'put': return { method: 'PUT', headers: json, body: small(op) }
    case 'post2m': return { method: 'POST', headers: binary, body: bytes(2 * MiB) }
    case 'upload': return { method: 'POST', headers: binary, body: () => pattern(5 * MiB) }
    case 'expect': return { method: 'POST', headers: { ...binary, expect: '100-continue' }, body: bytes(2 * MiB) }
    default: throw new Error(`unknown operation ${op}`)
  }
}

async function digest (body: AsyncIterable<Uint8Array> | null): Promise<{ length: number, sha256: string }> {
  const hash = createHash('sha256')
  let length = 0
  if (body !== null) for await (const chunk of body) { hash.update(chunk); length += chunk.length }
  return { length, sha256: hash.digest('hex') }
}

async function viaFetch (url: string, req: Request): Promise<Seen> {
  const body = typeof req.body === 'function' ? Readable.toWeb(Readable.from(req.body())) as ReadableStream : req.body
  const res = await fetch(url, { method: req.method, headers: req.headers, body, ...(typeof req.body === 'function' ? { duplex: 'half' } : {}) } as RequestInit)
  return { status: res.status, contentLength: res.headers.get('content-length'), ...await digest(res.body as AsyncIterable<Uint8Array> | null) }
}

async function viaAxios (url: string, req: Request): Promise<Seen> {
  const res = await axios.request<Readable>({
    url,
    method: req.method,
    headers: req.headers,
    data: typeof req.body === 'function' ? Readable.from(req.body()) : req.body,
    responseType: 'stream',
    validateStatus: () => true,
    maxBodyLength: Infinity,
    maxContentLength: Infinity
  })
  return { status: res.status, contentLength: (res.headers['content-length'] as string | undefined) ?? null, ...await digest(res.data) }
}

const agent = new http.Agent({ keepAlive: true })

function viaHttp (url: string, req: Request): Promise<Seen> {
  return new Promise((resolve, reject) => {
    let continued: boolean | undefined
    const outgoing = http.request(url, { method: req.method, headers: req.headers, agent }, (res) => {
      digest(res).then((d) => resolve({ status: res.statusCode ?? 0, contentLength: res.headers['content-length'] ?? null, ...d, ...(continued !== undefined ? { continued } : {}) }), reject)
    })
    outgoing.on('error', reject)
    const body = req.body
    if (req.headers.expect !== undefined) {
      // The body waits for the server's 100 Continue.
      continued = false
      outgoing.on('continue', () => { continued = true; outgoing.end(body as Buffer) })
      outgoing.flushHeaders()
      return
    }
    if (typeof body === 'function') {
      // No Content-Length: node:http sends it chunked.
      Readable.from(body()).pipe(outgoing)
      return
    }
    outgoing.end(body)
  })
}

const clients: Record<string, (url: string, req: Request) => Promise<Seen>> = { fetch: viaFetch, axios: viaAxios, http: viaHttp }
const name = { fetch: 'node-fetch', axios: 'axios', http: 'node-http' }[client] ?? client

for (const op of opList.split(',')) {
  try {
    const seen = await clients[client]!(`${base}/v1/clients/${name}/${op}`, request(op))
    console.log(JSON.stringify({ op, ...seen }))
  } catch (error) {
    const err = error as Error & { cause?: Error & { code?: string } }
    // undici (Node's fetch) will not send `Expect`: it cannot do that operation at all.
    if (op === 'expect' && client === 'fetch' && err.cause?.code === 'UND_ERR_NOT_SUPPORTED') console.log(JSON.stringify({ op, skip: `Node's fetch refuses to send Expect (${err.cause.message})` }))
    else console.log(JSON.stringify({ op, error: `${err.message}${err.cause !== undefined ? `: ${err.cause.message}` : ''}` }))
  }
}
agent.destroy()
