/**
 * Oversized requests: a long request line or header block is 431 (Node counts
 * the request line in the header limit, so there is no separate 414), too many
 * header fields is 431, a body over the limit is 413 whether it is declared or
 * chunked; the upstream gets nothing, or an aborted request holding at most the
 * limit.
 */
import t from 'tap'
import { connect } from 'node:net'
import { SecretWatch, sleep, within, yamlConfig } from './lib/watch.js'
import { MAX_REQUEST_HEADERS } from '../../src/inbound/request-target.js'

const watch = new SecretWatch()

function headers (count: number, make: (i: number) => string): string {
  return Array.from({ length: count }, (_, i) => make(i) + '\r\n').join('')
}

t.test('request line and headers over the limit: 431, closed, upstream untouched', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const limit = proxy.config.inbound.maxHeaderSize
  const cases: Record<string, string> = {
    'long request line': `GET /v1/sessions/${'a'.repeat(limit + 10)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'long query': `GET /v1/sessions?q=${'a'.repeat(limit + 10)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'one long header': `GET /v1/sessions HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(limit + 10)}\r\n\r\n`,
    'many headers over the size': `GET /v1/sessions HTTP/1.1\r\nHost: x\r\n${headers(400, (i) => `X-H${i}: ${'v'.repeat(40)}`)}\r\n`
  }
  for (const [name, text] of Object.entries(cases)) {
    const answer = await watch.raw(proxy.port, text, 5_000, true)
    t.equal(answer.status, 431, name)
    t.match(answer.text, /x-pave-proxy-error: PAVE_PROXY_REQUEST_HEADERS_TOO_LARGE/i, name)
    t.ok(answer.closed, `${name}: closed`)
  }
  t.equal(upstream.received.length, 0)
})

t.test('a smaller configured header limit holds', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, configFile: yamlConfig(['inbound:', '  maxHeaderSize: 2048']) })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const over = await watch.raw(proxy.port, `GET /v1/${'a'.repeat(2100)} HTTP/1.1\r\nHost: x\r\n\r\n`, 5_000, true)
  t.equal(over.status, 431)
  const under = await watch.raw(proxy.port, `GET /v1/${'a'.repeat(1500)} HTTP/1.1\r\nHost: x\r\n\r\n`)
  t.equal(under.status, 200)
  t.equal(upstream.received.length, 1)
})

t.test('too many header fields: 431 (Node alone would drop those past 2000)', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const atLimit = await watch.raw(proxy.port, `GET /v1/a HTTP/1.1\r\nHost: x\r\n${headers(MAX_REQUEST_HEADERS - 1, (i) => `x-${i}: v`)}\r\n`)
  t.equal(atLimit.status, 200, `${MAX_REQUEST_HEADERS} fields pass`)
  for (const count of [MAX_REQUEST_HEADERS, 2_500]) {
    const answer = await watch.raw(proxy.port, `GET /v1/b HTTP/1.1\r\nHost: x\r\n${headers(count, (i) => `x-${i}: v`)}\r\n`)
    t.equal(answer.status, 431, `${count + 1} fields`)
    t.match(answer.text, /x-pave-proxy-error: PAVE_PROXY_REQUEST_HEADERS_TOO_LARGE/i)
  }
  // A Content-Length hidden past field 2000 still frames the body for Node's parser; the proxy refuses before reading it.
  const hidden = await watch.raw(proxy.port, `POST /v1/c HTTP/1.1\r\nHost: x\r\n${headers(2_100, (i) => `x-${i}: v`)}Content-Length: 4\r\n\r\nabcd`)
  t.equal(hidden.status, 431)
  t.same(upstream.received.map((r) => r.url), ['/v1/a'])
})

t.test('a declared body over the limit: 413 before anything goes upstream', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_BODY_LIMIT: '10000' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  // Only the head is sent: the refusal must not wait for the body.
  const answer = await watch.raw(proxy.port, 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 10000001\r\n\r\n', 5_000, true)
  t.equal(answer.status, 413)
  t.match(answer.text, /x-pave-proxy-error: PAVE_PROXY_REQUEST_TOO_LARGE/i)
  t.match(answer.text, /connection: close/i)
  t.ok(answer.closed)
  t.equal(upstream.received.length, 0)
})

t.test('a chunked body over the limit: counted while streaming, 413, the upstream request aborted', async (t) => {
  const upstreamSaw: Array<{ bytes: number, aborted: boolean }> = []
  const upstream = await watch.upstream({
    bufferBody: false,
    handler: (req, res) => {
      const seen = { bytes: 0, aborted: false }
      upstreamSaw.push(seen)
      req.on('data', (chunk: Buffer) => { seen.bytes += chunk.length })
      req.on('error', () => {})
      req.on('close', () => { if (!req.complete) seen.aborted = true })
      req.on('end', () => res.writeHead(200).end('read all of it'))
    }
  })
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_BODY_LIMIT: '100000' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const socket = connect(proxy.port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.write('POST /v1/hotspots/ABC/photos-url HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
  const chunk = `2710\r\n${'a'.repeat(10_000)}\r\n`
  for (let i = 0; i < 30 && !socket.destroyed && received === ''; i++) {
    socket.write(chunk)
    await sleep(10)
  }
  await within(closed, 3_000, undefined)
  watch.saw(received)
  t.match(received, /^HTTP\/1\.1 413 [^]*PAVE_PROXY_REQUEST_TOO_LARGE/, '413 with the proxy\'s code')
  t.ok(socket.destroyed || socket.readableEnded, 'connection closed')
  await sleep(100)
  t.equal(upstreamSaw.length, 1, 'one request upstream')
  t.ok((upstreamSaw[0]?.bytes ?? Infinity) <= 100_000, `no more than the limit reached the upstream (${upstreamSaw[0]?.bytes})`)
  t.equal(upstreamSaw[0]?.aborted, true, 'the upstream request was aborted, not completed')
  socket.destroy()
  t.equal((await watch.request(`${proxy.url}/v1/next`)).status, 200, 'the proxy keeps serving')
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
