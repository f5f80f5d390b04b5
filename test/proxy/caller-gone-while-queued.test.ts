/**
 * A caller that goes away while its request waits in the upstream pool's own queue
 * (every connection busy): the request is dropped when it reaches a connection and
 * never sent to PAVE.
 */
import t from 'tap'
import { connect } from 'node:net'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

t.test('a caller gone while queued in the pool: its request never reaches PAVE, the next one does', async (t) => {
  const held: ServerResponse[] = []
  const paths: string[] = []
  const upstream = await startUpstream({
    handler: (req, res) => {
      paths.push(req.url ?? '')
      if (req.url === '/v1/sessions/FIRST') { held.push(res); return } // answered later
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    }
  })
  // One upstream connection, but room for more in the gate: the second request waits in the pool.
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_CONNECTIONS: '1' }, overload: { maxInFlight: 4 } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const first = request(`${proxy.url}/v1/sessions/FIRST`)
  while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))

  const socket = connect(proxy.port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('GET /v1/sessions/GONE HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 50)) // inside the proxy, queued in the pool
  socket.destroy()
  await new Promise((resolve) => setTimeout(resolve, 50)) // the proxy sees the close

  ;(held[0] as ServerResponse).writeHead(200, { 'content-type': 'application/json' }).end('{"first":true}')
  const answer = await first
  t.equal(answer.statusCode, 200)
  t.same(await answer.body.json(), { first: true })

  const next = await request(`${proxy.url}/v1/sessions/NEXT`)
  t.equal(next.statusCode, 200)
  await next.body.dump()
  t.same(paths, ['/v1/sessions/FIRST', '/v1/sessions/NEXT'], 'the abandoned request was never sent')
  t.notOk(proxy.logs.some((l) => l.includes('upstream request failed')), 'nothing to log: nobody was left to answer')
})
