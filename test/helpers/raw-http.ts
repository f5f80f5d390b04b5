/**
 * Raw HTTP/1.1 over a TCP socket, for requests no client library would send.
 * Resolves with everything received once one full response has arrived (by
 * Content-Length, chunked terminator, or the server closing), or after `timeoutMs`.
 */
import { connect } from 'node:net'

export interface RawAnswer {
  /** Everything received, latin1. */
  text: string
  /** Status code of the first response, or 0 when none came. */
  status: number
  /** True when the server closed the connection. */
  closed: boolean
}

/** With `untilClose`, waits for the server to close the connection (or the timeout) rather than for one response. */
export function rawRequest (port: number, text: string | Buffer, timeoutMs = 5_000, untilClose = false): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    let received = ''
    let closed = false
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received)
      resolve({ text: received, status: match !== null ? Number(match[1]) : 0, closed })
    }
    const timer = setTimeout(finish, timeoutMs)
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1')
      const headEnd = received.indexOf('\r\n\r\n')
      if (headEnd === -1 || untilClose) return
      const head = received.slice(0, headEnd)
      const body = received.slice(headEnd + 4)
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)
      if (length !== null && body.length >= Number(length[1])) finish()
      else if (/\r\ntransfer-encoding: *chunked/i.test(head) && body.endsWith('0\r\n\r\n')) finish()
    })
    socket.on('end', () => { closed = true; finish() })
    socket.on('error', (error) => { clearTimeout(timer); reject(error) })
  })
}
