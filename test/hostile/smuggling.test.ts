/**
 * Request smuggling shapes, on raw sockets: each one is answered 400 with the
 * proxy's JSON error and the connection closed, and the upstream receives
 * nothing; the shapes HTTP allows are forwarded as exactly one well-formed request.
 */
import t from 'tap'
import { connect } from 'node:net'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SecretWatch, sleep, within } from './lib/watch.js'
import { ACCOUNT } from '../helpers/upstream.js'

const watch = new SecretWatch()

const HEAD = 'POST /v1/sessions HTTP/1.1\r\nHost: pave-proxy\r\n'
/** Shapes refused by Node's parser or the proxy's own message check. */
const REFUSED: Record<string, string> = {
  'CL+TE': `${HEAD}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`,
  'TE+CL': `${HEAD}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST /v1/smuggled HTTP/1.1\r\n\r\n0\r\n\r\n`,
  'duplicate Content-Length (different)': `${HEAD}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`,
  'duplicate Content-Length (same)': `${HEAD}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`,
  'Content-Length list': `${HEAD}Content-Length: 4, 4\r\n\r\nabcd`,
  'Content-Length negative': `${HEAD}Content-Length: -1\r\n\r\n`,
  'Content-Length with sign': `${HEAD}Content-Length: +4\r\n\r\nabcd`,
  'Content-Length hex': `${HEAD}Content-Length: 0x4\r\n\r\nabcd`,
  'Content-Length overflow': `${HEAD}Content-Length: 99999999999999999999999\r\n\r\nabcd`,
  'Transfer-Encoding: chunked, identity': `${HEAD}Transfer-Encoding: chunked, identity\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
  'Transfer-Encoding: identity + CL': `${HEAD}Transfer-Encoding: identity\r\nContent-Length: 4\r\n\r\nabcd`,
  'Transfer-Encoding: gzip, chunked': `${HEAD}Transfer-Encoding: gzip, chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
  'Transfer-Encoding twice': `${HEAD}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
  'Transfer-Encoding: xchunked': `${HEAD}Transfer-Encoding: xchunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
  'Transfer-Encoding on HTTP/1.0': 'POST /v1/sessions HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n',
  'obs-fold': `${HEAD}X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n`,
  'obs-fold into Transfer-Encoding': `${HEAD}Transfer-Encoding: identity\r\n chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
  'bare LF line ends': 'GET /v1/sessions HTTP/1.1\nHost: x\n\n',
  'bare CR line ends': 'GET /v1/sessions HTTP/1.1\rHost: x\r\r\n',
  'bare LF inside the head': 'GET /v1/sessions HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n',
  'bare CR inside a value': 'GET /v1/sessions HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n',
  'NUL inside a value': 'GET /v1/sessions HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n',
  'space before colon': 'GET /v1/sessions HTTP/1.1\r\nHost : x\r\n\r\n',
  'space before colon (Content-Length)': `${HEAD}Content-Length : 4\r\n\r\nabcd`,
  'space before colon (Transfer-Encoding)': `${HEAD}Transfer-Encoding : chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
  'chunk-extension flood': `${HEAD}Transfer-Encoding: chunked\r\n\r\n4;${'a=b;'.repeat(20_000)}\r\nabcd\r\n0\r\n\r\n`,
  'chunk size not hex': `${HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n`,
  'chunk size overflow': `${HEAD}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabcd\r\n0\r\n\r\n`,
  'chunk lines with bare LF': `${HEAD}Transfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n`,
  'HTTP/0.9 request line': 'GET /v1/sessions\r\n\r\n',
  'HTTP/1.2': 'GET /v1/sessions HTTP/1.2\r\nHost: x\r\n\r\n',
  'HTTP/2.0 in HTTP/1 syntax': 'GET /v1/sessions HTTP/2.0\r\nHost: x\r\n\r\n',
  'bad method token': 'G@T /v1/sessions HTTP/1.1\r\nHost: x\r\n\r\n',
  'no Host on HTTP/1.1': 'GET /v1/sessions HTTP/1.1\r\n\r\n',
  'two Host headers': 'GET /v1/sessions HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n',
  'Host with a path': 'GET /v1/sessions HTTP/1.1\r\nHost: a.example/x\r\n\r\n',
  'Host with userinfo': 'GET /v1/sessions HTTP/1.1\r\nHost: user@a.example\r\n\r\n'
}

/** Shapes HTTP allows: forwarded as one request carrying `abcd` (or nothing). */
const ALLOWED: Record<string, [string, string]> = {
  'Transfer-Encoding with a tab before the value': [`${HEAD}Transfer-Encoding:\tchunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`, 'abcd'],
  'Transfer-Encoding in capitals': [`${HEAD}Transfer-Encoding: CHUNKED\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`, 'abcd'],
  'a small chunk extension': [`${HEAD}Transfer-Encoding: chunked\r\n\r\n4;name=value\r\nabcd\r\n0\r\n\r\n`, 'abcd'],
  'HTTP/1.0 with Content-Length': ['POST /v1/sessions HTTP/1.0\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd', 'abcd'],
  'HTTP/1.0 without Host': ['GET /v1/sessions HTTP/1.0\r\n\r\n', ''],
  'Host with an IPv6 literal and port': ['GET /v1/sessions HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n', '']
}

t.test('smuggling shapes: 400, JSON error, connection closed, upstream untouched', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const [name, text] of Object.entries(REFUSED)) {
    const answer = await watch.raw(proxy.port, text, 5_000, true)
    t.equal(answer.status, 400, `${name}: 400`)
    t.match(answer.text, /\r\nx-pave-proxy-error: PAVE_PROXY_REQUEST_BAD\r\n/i, `${name}: the proxy's code`)
    t.match(answer.text, /\r\ncontent-type: application\/json/i, `${name}: JSON`)
    t.match(answer.text, /\r\nconnection: close\r\n/i, `${name}: connection: close`)
    t.ok(answer.closed, `${name}: connection closed`)
    t.equal((answer.text.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, `${name}: exactly one response`)
  }
  t.equal(upstream.received.length, 0, 'the upstream received nothing')
  t.equal((await watch.request(`${proxy.url}/v1/after`)).status, 200, 'the proxy keeps serving')
})

t.test('shapes HTTP allows reach the upstream as exactly one well-formed request', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const [name, [text, body]] of Object.entries(ALLOWED)) {
    const before = upstream.received.length
    const answer = await watch.raw(proxy.port, text)
    t.equal(answer.status, 200, name)
    await sleep(20)
    t.equal(upstream.received.length - before, 1, `${name}: one request upstream`)
    const received = upstream.received[before]
    t.equal(received?.body.toString(), body, `${name}: the body`)
    t.equal(received?.signedBy, ACCOUNT.username, `${name}: signed`)
    t.equal(received?.headers.host, `127.0.0.1:${upstream.port}`, `${name}: the upstream's Host`)
    t.notOk(received?.headers['transfer-encoding'] !== undefined && received.headers['content-length'] !== undefined, `${name}: one framing upstream`)
  }
})

t.test('a request smuggled behind a refused one never runs', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  // A valid request, then a CL+TE one hiding a third, in one write: the parser refuses the
  // second before the first is answered, so the caller gets the 400 and the first may or
  // may not have gone upstream, but the hidden third never does.
  const together = await watch.raw(proxy.port, 'GET /v1/first HTTP/1.1\r\nHost: x\r\n\r\n' + (REFUSED['CL+TE'] as string), 5_000, true)
  t.match(together.text, /HTTP\/1\.1 400 Bad Request[^]*PAVE_PROXY_REQUEST_BAD"}$/, 'the 400 is the last thing sent')
  t.ok(together.closed, 'connection closed')
  await sleep(50)
  t.ok(upstream.received.every((r) => r.url === '/v1/first'), 'nothing but the valid request upstream')
  t.ok(upstream.received.length <= 1, 'at most once')

  // The same in two writes: the first is answered, then the connection is refused and closed.
  const socket = connect(proxy.port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.write('GET /v1/second HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(200)
  socket.write(REFUSED['TE+CL'] as string)
  await within(closed, 3_000, undefined)
  watch.saw(received)
  t.match(received, /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 400 Bad Request/, 'the 200, then the 400')
  t.equal((received.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 2, 'nothing more')
  t.ok(upstream.received.every((r) => r.url === '/v1/first' || r.url === '/v1/second'), 'the smuggled requests never went upstream')
  socket.destroy()
})

t.test('a framing error after the response started cuts the connection, never writes a second status line', async (t) => {
  const server = createServer((req, res) => {
    req.on('error', () => {})
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('first-part;')
    setTimeout(() => { if (!res.destroyed) res.end('second-part') }, 1_000)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const proxy = await watch.proxy({ upstreamUrl })
  t.teardown(async () => { await proxy.close(); server.closeAllConnections(); server.close() })
  for (const waitMs of [300, 0]) {
    const socket = connect(proxy.port, '127.0.0.1')
    let received = ''
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    socket.write(`${HEAD}Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n`)
    await sleep(waitMs)
    socket.write('zz\r\nxx\r\n0\r\n\r\n') // not a chunk size
    await within(closed, 3_000, undefined)
    watch.saw(received)
    t.ok(socket.destroyed || socket.readableEnded, `after ${waitMs} ms: connection closed`)
    t.equal((received.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, `after ${waitMs} ms: one status line only`)
    if (waitMs > 0) {
      t.match(received, /^HTTP\/1\.1 200 /, 'the started response')
      t.notMatch(received, /PAVE_PROXY_REQUEST_BAD/, 'no error written into it')
    } else {
      t.match(received, /^HTTP\/1\.1 400 /, 'refused before any response started')
    }
    socket.destroy()
  }
  t.ok(proxy.logs.some((line) => line.includes('"inResponse":true')), 'the cut is logged')
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
