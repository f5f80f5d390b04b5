/**
 * A body is forwarded as sent whatever the method: Fastify reads none for GET and
 * HEAD (it treats them as bodyless), and the proxy used to drop it silently while
 * the caller got 200. DELETE and OPTIONS bodies, which Fastify 5 does read, are
 * checked the same way.
 */
import t from 'tap'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest } from '../helpers/raw-http.js'
import { carriesBody } from '../../src/proxy.js'

const BODY = '{"query":"find me"}'

t.test('GET, HEAD, DELETE and OPTIONS bodies reach PAVE byte for byte, declared or chunked', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
    for (const framing of ['content-length', 'chunked', 'content-type']) {
      const head = framing === 'chunked'
        ? ['Transfer-Encoding: chunked']
        : [`Content-Length: ${BODY.length}`, ...(framing === 'content-type' ? ['Content-Type: application/json'] : [])]
      const bytes = framing === 'chunked' ? `${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n` : BODY
      upstream.received.length = 0
      const answer = await rawRequest(proxy.port, [`${method} /v1/sessions/ABC HTTP/1.1`, 'Host: x', ...head, 'Connection: close', '', bytes].join('\r\n'), 5_000, true)
      const label = `${method} with ${framing}`
      t.equal(answer.status, 200, label)
      t.equal(upstream.received.length, 1, label)
      const received = upstream.received[0]!
      t.equal(received.method, method, label)
      t.equal(received.signedBy, ACCOUNT.username, label)
      t.equal(received.body.toString(), BODY, `${label}: the body arrived`)
    }
  }
})

t.test('a GET body is held to the body limit like any other', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_BODY_LIMIT: '10' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const declared = await rawRequest(proxy.port, ['GET /v1/sessions HTTP/1.1', 'Host: x', `Content-Length: ${BODY.length}`, 'Connection: close', '', BODY].join('\r\n'), 5_000, true)
  t.equal(declared.status, 413)
  const chunked = await rawRequest(proxy.port, ['GET /v1/sessions HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Connection: close', '', `${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n`].join('\r\n'), 5_000, true)
  t.notOk(upstream.received.some((r) => r.body.length > 10), 'no more than the limit reached PAVE')
  t.not(chunked.status, 200, 'a chunked body over the limit is not answered 200')
})

t.test('a GET without a body stays bodyless', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const answer = await rawRequest(proxy.port, 'GET /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 5_000, true)
  t.equal(answer.status, 200)
  t.equal(upstream.received[0]?.body.length, 0)
  t.notOk('transfer-encoding' in (upstream.received[0]?.headers ?? {}))
  t.equal(carriesBody({}), false)
  t.equal(carriesBody({ 'content-length': '0' }), false)
  t.equal(carriesBody({ 'content-length': '1' }), true)
  t.equal(carriesBody({ 'transfer-encoding': 'chunked' }), true)
})
