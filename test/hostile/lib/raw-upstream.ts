/**
 * An upstream on a raw TCP socket, for answers no HTTP server would send: the
 * test decides, per request, what bytes go back (or none, or a reset).
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/** Called once per request head seen on a connection (`index` counts requests on that connection). */
export type RawAnswerer = (socket: Socket, head: string, index: number) => void

export interface RawUpstream {
  url: string
  port: number
  /** Connections accepted so far. */
  accepted: number
  /** Connections open now. */
  readonly open: Set<Socket>
  /** Every request head received (with its body bytes when they came in the same chunk). */
  readonly heads: string[]
  answer: RawAnswerer
  server: Server
  close: () => Promise<void>
}

export async function startRawUpstream (answer: RawAnswerer): Promise<RawUpstream> {
  const upstream: RawUpstream = {
    url: '',
    port: 0,
    accepted: 0,
    open: new Set(),
    heads: [],
    answer,
    server: createServer((socket) => {
      upstream.accepted++
      upstream.open.add(socket)
      socket.on('close', () => upstream.open.delete(socket))
      socket.on('error', () => {})
      let index = 0
      socket.on('data', (data) => {
        const text = data.toString('latin1')
        if (!/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(text)) return // body bytes of a request already answered
        upstream.heads.push(text)
        upstream.answer(socket, text, index++)
      })
    }),
    close: async () => {
      for (const socket of upstream.open) socket.destroy()
      await new Promise<void>((resolve) => upstream.server.close(() => resolve()))
    }
  }
  await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve))
  upstream.port = (upstream.server.address() as AddressInfo).port
  upstream.url = `http://127.0.0.1:${upstream.port}`
  return upstream
}

/** A well-formed small answer: `ok`. */
export function ok (socket: Socket): void {
  socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok')
}
