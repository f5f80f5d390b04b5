/** Streamed transfers through a proxy (or direct): throughput and RSS growth of the process in the middle. */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { randomFillSync } from 'node:crypto'
import { sampleRss, treeRss } from './proc.js'
import { MB } from './table.js'
import { SINK_PATH, SOURCE_PATH } from './fixture.js'

export interface Transfer {
  readonly bytes: number
  readonly ms: number
  /** MB/s (10^6 bytes). */
  readonly throughput: number
  readonly rssBefore: number
  readonly rssPeak: number
  readonly growth: number
  /** Whether the upstream saw a valid signature. */
  readonly signed: boolean
}

const chunk = randomFillSync(Buffer.alloc(64 * 1024))

export function readAll (res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    res.setEncoding('utf8')
    res.on('data', (data: string) => { text += data })
    res.on('end', () => resolve(text))
    res.on('error', reject)
  })
}

export async function upload (origin: string, bytes: number, pid: number): Promise<Transfer> {
  const rssBefore = treeRss(pid)
  const sampler = sampleRss(pid, 50)
  const started = performance.now()
  const answer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = httpRequest(origin + SINK_PATH, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes) } }, (res) => {
      readAll(res).then((body) => resolve({ status: res.statusCode ?? 0, body }), reject)
    })
    req.on('error', reject)
    let left = bytes
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left)
        left -= piece.length
        if (!req.write(piece)) {
          req.once('drain', pump)
          return
        }
      }
      req.end()
    }
    pump()
  })
  const ms = performance.now() - started
  const rssPeak = sampler.stop()
  if (answer.status !== 200) throw new Error(`upload: status ${answer.status}: ${answer.body.slice(0, 300)}`)
  const { received, signed } = JSON.parse(answer.body) as { received: number, signed: boolean }
  if (received !== bytes) throw new Error(`upload: the upstream received ${received} of ${bytes} bytes`)
  return { bytes, ms, throughput: bytes / MB / (ms / 1000), rssBefore, rssPeak, growth: rssPeak - rssBefore, signed }
}

export async function download (origin: string, bytes: number, pid: number): Promise<Transfer> {
  const rssBefore = treeRss(pid)
  const sampler = sampleRss(pid, 50)
  const started = performance.now()
  const { status, received, signed } = await new Promise<{ status: number, received: number, signed: boolean }>((resolve, reject) => {
    const req = httpRequest(`${origin}${SOURCE_PATH}?bytes=${bytes}`, { agent: false }, (res) => {
      let count = 0
      res.on('data', (data: Buffer) => { count += data.length })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, received: count, signed: res.headers['x-bench-signed'] === 'true' }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
  const ms = performance.now() - started
  const rssPeak = sampler.stop()
  if (status !== 200) throw new Error(`download: status ${status}`)
  if (received !== bytes) throw new Error(`download: received ${received} of ${bytes} bytes`)
  return { bytes, ms, throughput: bytes / MB / (ms / 1000), rssBefore, rssPeak, growth: rssPeak - rssBefore, signed }
}

