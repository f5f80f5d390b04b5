/** A body the forwarder will not send is stopped without an error event, and the caller's socket stays open for the answer. */
import t from 'tap'
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { destroyBody } from '../../src/upstream/forward.js'

t.test('a stream that is not the caller\'s request (the re-sign copy): destroyed, no error emitted', async (t) => {
  const body = new PassThrough()
  let errored = false
  body.on('error', () => { errored = true })
  destroyBody(body)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(body.destroyed)
  t.notOk(errored)
  destroyBody(body) // already destroyed: nothing happens
  t.ok(body.destroyed)
})

t.test('the caller\'s request: destroyed without its socket', async (t) => {
  const socket = new Socket()
  const request = new IncomingMessage(socket)
  destroyBody(request)
  t.ok(request.destroyed)
  t.notOk(socket.destroyed, 'the socket stays, for the proxy\'s answer')
  socket.destroy()
})
