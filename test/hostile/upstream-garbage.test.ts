/**
 * An upstream that does not speak HTTP properly: invalid bytes in header values,
 * impossible statuses, conflicting framing, oversized heads, floods of interim
 * (1xx) responses. The caller gets the proxy's 502 (or, once a response has
 * started, an aborted one), never the bad bytes; the process stays up and the
 * next request succeeds.
 */
import t from 'tap'
import type { Socket } from 'node:net'
import { SecretWatch, sleep } from './lib/watch.js'
import { ok, startRawUpstream } from './lib/raw-upstream.js'
import { MAX_INTERIM_RESPONSES } from '../../src/upstream/forward.js'

const watch = new SecretWatch()

/** Answers that must end in the proxy's 502; most are PAVE_PROXY_UPSTREAM_BAD_RESPONSE. */
const BAD: Record<string, [(socket: Socket) => void, 'BAD_RESPONSE' | 'UNREACHABLE']> = {
  'CR inside a header value': [(s) => s.end('HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'LF inside a header value (response splitting)': [(s) => s.end('HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'NUL inside a header value': [(s) => s.end('HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'obs-fold': [(s) => s.end('HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'status 999': [(s) => s.end('HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'status 600': [(s) => s.end('HTTP/1.1 600 Weird\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'status 1000': [(s) => s.end('HTTP/1.1 1000 Weird\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'status 099': [(s) => s.end('HTTP/1.1 099 Weird\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'Content-Length and Transfer-Encoding': [(s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'), 'BAD_RESPONSE'],
  'two different Content-Lengths': [(s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!'), 'BAD_RESPONSE'],
  'not HTTP at all': [(s) => s.end('garbage\r\n\r\n'), 'BAD_RESPONSE'],
  'an HTTP/0.9 body': [(s) => s.end('hello'), 'BAD_RESPONSE'],
  'a 200 KB header': [(s) => s.end(`HTTP/1.1 200 OK\r\nX-A: ${'a'.repeat(200_000)}\r\nContent-Length: 2\r\n\r\nok`), 'BAD_RESPONSE'],
  '5000 headers': [(s) => s.end('HTTP/1.1 200 OK\r\n' + 'X-A: a\r\n'.repeat(5_000) + 'Content-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'an unrequested 101': [(s) => s.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes'), 'UNREACHABLE'],
  'an unexpected 100 Continue': [(s) => s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 'UNREACHABLE'],
  [`${MAX_INTERIM_RESPONSES + 1} interim responses`]: [(s) => s.end('HTTP/1.1 102 Processing\r\n\r\n'.repeat(MAX_INTERIM_RESPONSES + 1) + 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 'BAD_RESPONSE'],
  'a flood of 20000 interim responses': [(s) => s.end('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n'.repeat(20_000)), 'BAD_RESPONSE']
}

t.test('invalid responses: 502 with the proxy\'s code, the bad bytes never reach the caller, the next request succeeds', async (t) => {
  const upstream = await startRawUpstream(ok)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_TIMEOUT_MS: '2000' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const [name, [answer, code]] of Object.entries(BAD)) {
    upstream.answer = answer
    const res = await watch.request(`${proxy.url}/v1/sessions/ABC`)
    t.equal(res.status, 502, name)
    t.equal(res.headers['x-pave-proxy-error'], `PAVE_PROXY_UPSTREAM_${code}`, `${name}: ${code}`)
    t.notOk('set-cookie' in res.headers || 'x-a' in res.headers, `${name}: no upstream header passed on`)
    t.same(JSON.parse(res.body).code, `PAVE_PROXY_UPSTREAM_${code}`)
    upstream.answer = ok
    const next = await watch.request(`${proxy.url}/v1/sessions/ABC`)
    t.equal(next.status, 200, `${name}: the next request succeeds`)
  }
  for (const heads of upstream.heads) watch.harvest(heads)
})

t.test('a response cut mid-body (truncated chunked or short Content-Length) reaches the caller aborted, never completed', async (t) => {
  const upstream = await startRawUpstream(ok)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const cuts: Record<string, (socket: Socket) => void> = {
    'truncated chunked body': (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nwo'),
    'chunked body without its last chunk': (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'),
    'short Content-Length body': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello'),
    'bad chunk size mid-body': (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n')
  }
  for (const [name, cut] of Object.entries(cuts)) {
    upstream.answer = cut
    const res = await watch.request(`${proxy.url}/v1/sessions/ABC/photos`)
    t.equal(res.status, 200, `${name}: the status was already passed on`)
    t.ok(res.bodyError !== undefined, `${name}: the body ends in an error (${res.bodyError})`)
    upstream.answer = ok
    t.equal((await watch.request(`${proxy.url}/v1/next`)).status, 200, `${name}: the next request succeeds`)
  }
  for (const heads of upstream.heads) watch.harvest(heads)
})

t.test('interim responses cannot hold a request past the timeout, and a few are fine', async (t) => {
  const upstream = await startRawUpstream(ok)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { PAVE_UPSTREAM_TIMEOUT_MS: '600' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  // One 102 every 100 ms: undici alone restarts its headers timeout on each.
  upstream.answer = (socket) => {
    let sent = 0
    const timer = setInterval(() => {
      if (socket.destroyed || sent++ >= MAX_INTERIM_RESPONSES - 1) { clearInterval(timer); return }
      socket.write('HTTP/1.1 102 Processing\r\n\r\n')
    }, 100)
  }
  const started = Date.now()
  const res = await watch.request(`${proxy.url}/v1/sessions`)
  const elapsed = Date.now() - started
  t.equal(res.status, 504)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_UPSTREAM_TIMEOUT')
  t.ok(elapsed >= 550 && elapsed < 1_500, `answered after ${elapsed} ms, not held by the 1xx`)
  await sleep(50)
  t.equal(upstream.open.size, 0, 'the upstream connection was closed')

  upstream.answer = (socket) => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'.repeat(MAX_INTERIM_RESPONSES) +
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  const fine = await watch.request(`${proxy.url}/v1/sessions`)
  t.equal(fine.status, 200, `${MAX_INTERIM_RESPONSES} interim responses, then the answer`)
  t.equal(fine.body, 'ok')
  for (const heads of upstream.heads) watch.harvest(heads)
})

t.test('hop-by-hop response headers and those the upstream\'s Connection names are not passed on', async (t) => {
  const upstream = await startRawUpstream((s) => s.write('HTTP/1.1 200 OK\r\nConnection: x-internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=1\r\n' +
    'Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok'))
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await watch.request(`${proxy.url}/v1/sessions`)
  t.equal(res.status, 200)
  for (const name of ['x-internal', 'proxy-connection', 'upgrade']) t.notOk(name in res.headers, name)
  t.not(res.headers['keep-alive'], 'timeout=1', 'the upstream\'s Keep-Alive is not passed on')
  for (const heads of upstream.heads) watch.harvest(heads)
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
