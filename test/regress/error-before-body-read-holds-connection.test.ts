/**
 * Guards the forwarder's own error answers (502, 504, 500…) given while the caller's body
 * is still arriving. The unread rest of the body sat paused on the socket: the caller's
 * close was never read, so the connection stayed open until Node's request timeout and
 * `app.close()` waited for it; a caller that finished its body could not send another
 * request on the connection. Found by the client matrix (curl `-T -` answered 502, which
 * stops sending and closes). The rest of the body is now read and discarded, as Node does
 * for a body nobody consumed.
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { startProxy } from '../helpers/proxy.js'

const HEAD = 'POST /v1/sessions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: application/octet-stream\r\n\r\n'
const CHUNK = `10000\r\n${'a'.repeat(0x10000)}\r\n`

/** Sends a chunked body, 64 KiB at a time, until an answer's head has arrived. */
async function uploadUntilAnswered (socket: Socket, received: () => string): Promise<void> {
  socket.write(HEAD)
  while (!/\r\n\r\n/.test(received()) && !socket.destroyed) {
    socket.write(CHUNK)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function refusedProxy (): Promise<Awaited<ReturnType<typeof startProxy>>> {
  // Port 9 (discard) on loopback: nothing listens, the connect is refused.
  const proxy = await startProxy({ upstreamUrl: 'http://127.0.0.1:9' })
  return proxy
}

t.test('a caller that stops sending and closes: the proxy sees it and lets go', async (t) => {
  const proxy = await refusedProxy()
  const socket = connect(proxy.port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await uploadUntilAnswered(socket, () => received)
  t.match(received, /^HTTP\/1\.1 502 /, 'the caller gets the proxy\'s 502')
  t.match(received, /\r\nx-pave-proxy-error: PAVE_PROXY_UPSTREAM_UNREACHABLE\r\n/i)
  socket.end() // what curl does: stop sending, close
  await closed
  const started = Date.now()
  await proxy.close()
  t.ok(Date.now() - started < 2_000, 'no connection holds the listener open')
})

t.test('a caller that finishes its body can send the next request on the connection', async (t) => {
  const proxy = await refusedProxy()
  t.teardown(async () => { await proxy.close() })
  const socket = connect(proxy.port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  await uploadUntilAnswered(socket, () => received)
  t.match(received, /^HTTP\/1\.1 502 /)
  t.notMatch(received, /\r\nconnection: close\r\n/i, 'the connection stays usable')
  for (let i = 0; i < 8; i++) socket.write(CHUNK)
  socket.write('0\r\n\r\n')
  socket.write('GET /v1/sessions/ABC HTTP/1.1\r\nhost: x\r\n\r\n')
  const started = Date.now()
  while ((received.match(/HTTP\/1\.1 502 /g) ?? []).length < 2 && Date.now() - started < 5_000) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal((received.match(/HTTP\/1\.1 502 /g) ?? []).length, 2, 'the second request was read and answered')
})
