/**
 * Guards the access line against a socket Node has already released when the
 * response closes (a caller that closes its connection after the answer): the
 * line used to read `req.socket` at that moment, which is then null, and the
 * process died on the TypeError.
 */
import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest } from '../helpers/raw-http.js'

t.test('a caller that closes its connection gets its access line, and the proxy lives on', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const body = 'x'.repeat(200_000)
  for (let i = 0; i < 5; i++) {
    const answer = await rawRequest(proxy.port, `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 5_000, true)
    t.equal(answer.status, 200)
  }
  const after = await request(`${proxy.url}/healthz`)
  t.equal(after.statusCode, 200, 'still serving')
  await after.body.dump()
  const lines = proxy.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request completed' && l.method === 'POST')
  t.equal(lines.length, 5)
  for (const line of lines) t.ok((line.bytesIn as number) > body.length, `bytesIn ${String(line.bytesIn)} counts the body`)
})
