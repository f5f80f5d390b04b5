import t from 'tap'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest } from '../helpers/raw-http.js'

t.test('a declared body over the limit is refused before anything goes upstream', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_BODY_LIMIT: '1000' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answer = await rawRequest(proxy.port, 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1001\r\n\r\n' + 'x'.repeat(1001), 5_000, true)
  t.equal(answer.status, 413)
  t.match(answer.text, /x-pave-proxy-error: PAVE_PROXY_REQUEST_TOO_LARGE/i)
  t.match(answer.text, /connection: close/i)
  t.ok(answer.closed, 'connection closed')
  t.equal(upstream.received.length, 0)

  const atLimit = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: 'y'.repeat(1000), headers: { 'content-type': 'text/plain' } })
  t.equal(atLimit.statusCode, 200, 'a body exactly at the limit passes')
  await atLimit.body.dump()
})

t.test('a chunked body is counted while streaming and the upstream request aborted', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_BODY_LIMIT: '100000' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  async function * chunks (): AsyncGenerator<Buffer> {
    for (let i = 0; i < 50; i++) yield Buffer.alloc(10_000, 97)
  }
  const res = await request(`${proxy.url}/v1/hotspots/ABC/photos-url`, { method: 'POST', body: Readable.from(chunks()) }).catch((error: Error) => error)
  if (res instanceof Error) {
    t.pass('the proxy closed the connection while the caller was still sending')
  } else {
    t.equal(res.statusCode, 413)
    t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_REQUEST_TOO_LARGE')
    await res.body.dump()
  }
  // The upstream may have seen the start of the request, but never a complete body.
  for (const received of upstream.received) t.ok(received.body.length <= 100_000, 'no more than the limit reached the upstream')
  const ok = await request(`${proxy.url}/v1/x`)
  t.equal(ok.statusCode, 200, 'the proxy keeps serving')
  await ok.body.dump()
})
