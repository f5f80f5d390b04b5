/**
 * Callers who leave: an upstream that reports whether each request it got was
 * cancelled or completed, and a driver that sends requests through the proxy and
 * walks away mid-upload (after the upstream has the request) or mid-download
 * (after the first bytes), half with a FIN and half with a reset.
 */
import { connect, type Socket } from 'node:net'
import type { SecretWatch } from '../../hostile/lib/watch.js'

export interface AbortUpstream {
  url: string
  cancelledUploads: () => number
  cancelledDownloads: () => number
  completed: () => number
  /** Upstream connections open now. */
  open: () => number
  /** Resolves when the upstream has seen request `probe`. */
  arrival: (probe: string) => Promise<void>
  /** Resolves when `n` requests have ended upstream (cancelled or completed), or after `timeoutMs`. */
  settled: (n: number, timeoutMs: number) => Promise<void>
  close: () => Promise<void>
}

/** The download each caller abandons: 8 MiB, sent 64 KiB every 5 ms. */
export const DOWNLOAD_BYTES = 8 * 1024 * 1024
const PACE_MS = 5

export async function startAbortUpstream (watch: SecretWatch): Promise<AbortUpstream> {
  let cancelledUploads = 0
  let cancelledDownloads = 0
  let completed = 0
  const waiting = new Map<string, () => void>()
  const arrived = new Set<string>()
  const sockets = new Set<Socket>()
  const upstream = await watch.upstream({
    bufferBody: false,
    handler: (req, res, received) => {
      // Nothing kept per request but the token, for the secret watch (the soak sends tens of thousands).
      watch.harvest(`api-token: ${String(received.headers['api-token'])}\r\n`)
      upstream.received.length = 0
      const probe = String(req.headers['x-probe'])
      arrived.add(probe)
      waiting.get(probe)?.()
      waiting.delete(probe)
      req.on('error', () => {})
      res.on('error', () => {})
      if (req.method === 'POST') {
        req.resume()
        req.on('close', () => { if (req.complete) completed++; else cancelledUploads++ })
        req.on('end', () => res.writeHead(200).end('{}'))
        return
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(DOWNLOAD_BYTES) })
      const chunk = Buffer.alloc(64 * 1024, 100)
      let sent = 0
      // Paced (a chunk every few ms), so that a download is still running when its caller leaves
      // rather than already sitting whole in the kernel's socket buffers.
      const pump = (): void => {
        if (res.destroyed) return
        if (sent >= DOWNLOAD_BYTES) { res.end(); return }
        sent += chunk.length
        if (res.write(chunk)) setTimeout(pump, PACE_MS)
        else res.once('drain', () => setTimeout(pump, PACE_MS))
      }
      res.on('close', () => { if (res.writableFinished) completed++; else cancelledDownloads++ })
      pump()
    }
  })
  upstream.server.on('connection', (socket: Socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)) })
  const ended = (): number => cancelledUploads + cancelledDownloads + completed
  return {
    url: upstream.url,
    cancelledUploads: () => cancelledUploads,
    cancelledDownloads: () => cancelledDownloads,
    completed: () => completed,
    open: () => sockets.size,
    arrival: async (probe) => {
      if (arrived.delete(probe)) return
      await new Promise<void>((resolve) => waiting.set(probe, () => { arrived.delete(probe); resolve() }))
    },
    settled: async (n, timeoutMs) => {
      const started = Date.now()
      while (ended() < n && Date.now() - started < timeoutMs) await new Promise((resolve) => setTimeout(resolve, 20))
    },
    close: upstream.close
  }
}

export interface AbortRun { uploads: number, downloads: number, failures: string[] }

let probes = 0

/** One caller who leaves; resolves with a failure description, or undefined. */
async function abortOnce (port: number, upstream: AbortUpstream, upload: boolean, reset: boolean): Promise<string | undefined> {
  const probe = `p${++probes}`
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  const leave = (): void => { if (reset) socket.resetAndDestroy(); else socket.destroy() }
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`${probe} (${upload ? 'upload' : 'download'}): timed out`), 5_000) })
  const done = new Promise<undefined>((resolve) => {
    if (upload) {
      socket.write(`POST /v1/sessions HTTP/1.1\r\nHost: x\r\nX-Probe: ${probe}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n${'{'.repeat(1000)}`)
      void upstream.arrival(probe).then(() => { leave(); resolve(undefined) })
    } else {
      socket.write(`GET /v1/sessions/ABC/photos HTTP/1.1\r\nHost: x\r\nX-Probe: ${probe}\r\n\r\n`)
      let received = 0
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length
        if (received >= 64 * 1024 && !socket.destroyed) { leave(); resolve(undefined) }
      })
    }
  })
  const failure = await Promise.race([done, late])
  clearTimeout(timer)
  if (failure !== undefined) socket.destroy()
  return failure
}

/** `count` callers who leave, `concurrency` at a time: even ones mid-upload, odd ones mid-download. */
export async function runAborts (port: number, upstream: AbortUpstream, options: { count: number, concurrency: number }): Promise<AbortRun> {
  const run: AbortRun = { uploads: 0, downloads: 0, failures: [] }
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < options.count; i = next++) {
      const upload = i % 2 === 0
      const failure = await abortOnce(port, upstream, upload, i % 4 >= 2)
      if (failure !== undefined) run.failures.push(failure)
      else if (upload) run.uploads++
      else run.downloads++
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  return run
}
