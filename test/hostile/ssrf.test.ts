/**
 * Server-side request forgery: whatever the request names (an absolute-form
 * target, a scheme-relative path, a forged Host, CONNECT, an Upgrade, IPv6,
 * decimal, octal or hex IPv4 forms), the only destination the proxy ever
 * connects to is the configured upstream. A canary server on another port
 * counts every connection that reaches it: none may.
 */
import t from 'tap'
import { createServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { SecretWatch, sleep, within, yamlConfig } from './lib/watch.js'
import { ACCOUNT } from '../helpers/upstream.js'

const watch = new SecretWatch()

async function startCanary (): Promise<{ port: number, hits: () => number, close: () => Promise<void> }> {
  let hits = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => { hits++; sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: async () => { for (const s of sockets) s.destroy(); await new Promise<void>((resolve) => server.close(() => resolve())) }
  }
}

/** Ways to write the canary's address. */
function hostForms (port: number): string[] {
  return [
    `127.0.0.1:${port}`, `localhost:${port}`, `2130706433:${port}`, `0177.0.0.1:${port}`, `0x7f.0.0.1:${port}`, `0x7f000001:${port}`,
    `127.1:${port}`, `[::1]:${port}`, `[::ffff:127.0.0.1]:${port}`, `[0:0:0:0:0:ffff:7f00:1]:${port}`, `017700000001:${port}`
  ]
}

t.test('absolute-form and scheme-relative targets are refused without connecting anywhere', async (t) => {
  const canary = await startCanary()
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await canary.close() })
  const targets: string[] = []
  for (const host of hostForms(canary.port)) {
    targets.push(`http://${host}/v1/sessions`, `https://${host}/v1/sessions`, `HTTP://${host}/`, `//${host}/v1/sessions`,
      `/\\${host}/v1`, `\\\\${host}/v1`, `/%2F${host}/v1`, `/%5C${host}/v1`, `/http://${host}/v1`, `ws://${host}/`)
  }
  targets.push(`${canary.port}`, '*', `127.0.0.1:${canary.port}`, `@127.0.0.1:${canary.port}/v1`)
  let refused = 0
  for (const target of targets) {
    const answer = await watch.raw(proxy.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${canary.port}\r\n\r\n`)
    if (answer.status === 400 && /PAVE_PROXY_REQUEST_BAD(_PATH)?/.test(answer.text)) refused++
    else t.fail(`${target}: ${answer.status}`)
  }
  t.equal(refused, targets.length, `${targets.length} targets refused with 400`)
  t.equal(upstream.received.length, 0, 'nothing went upstream')
  t.equal(canary.hits(), 0, 'nothing reached the canary')
})

t.test('a forged Host or forwarding header changes nothing: the upstream gets its own Host', async (t) => {
  const canary = await startCanary()
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await canary.close() })
  const forms = hostForms(canary.port)
  for (const host of forms) {
    const answer = await watch.raw(proxy.port, [
      'GET /v1/sessions/UCB-C3NPR4AGQZ HTTP/1.1', `Host: ${host}`, `X-Forwarded-Host: ${host}`, `Forwarded: host="${host}";proto=http`,
      'X-Forwarded-Proto: https', `X-Original-URL: http://${host}/`, `X-Rewrite-URL: //${host}/`, '', ''
    ].join('\r\n'))
    t.equal(answer.status, 200, host)
  }
  t.equal(upstream.received.length, forms.length)
  for (const received of upstream.received) {
    t.equal(received.headers.host, `127.0.0.1:${upstream.port}`, 'the upstream\'s Host')
    t.equal(received.url, '/v1/sessions/UCB-C3NPR4AGQZ', 'the path as sent')
    t.equal(received.signedBy, ACCOUNT.username)
  }
  t.equal(canary.hits(), 0, 'nothing reached the canary')
})

t.test('CONNECT closes the connection without connecting anywhere', async (t) => {
  const canary = await startCanary()
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close(); await canary.close() })
  for (const host of [...hostForms(canary.port), `127.0.0.1:${upstream.port}`]) {
    const answer = await watch.raw(proxy.port, `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`, 5_000, true)
    t.ok(answer.closed, `${host}: closed`)
    t.notMatch(answer.text, /^HTTP\/1\.1 2\d\d/, `${host}: no tunnel established`)
  }
  t.equal(upstream.received.length, 0, 'nothing went upstream')
  t.equal(canary.hits(), 0, 'nothing reached the canary')
})

t.test('Upgrade requests (WebSocket, h2c) are never upgraded: a plain request upstream, nothing relayed after it', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, configFile: yamlConfig(['inbound:', '  headersTimeoutMs: 500']) })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const upgrades = [
    ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'],
    ['Connection: keep-alive, Upgrade', 'Upgrade: WebSocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'],
    ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']
  ]
  for (const lines of upgrades) {
    const socket = connect(proxy.port, '127.0.0.1')
    let received = ''
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
    socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    socket.write(['GET /v1/callbacks HTTP/1.1', 'Host: x', ...lines, '', ''].join('\r\n'))
    await sleep(100)
    // A WebSocket frame, as if the switch had happened: it is read as the start of the next
    // HTTP request (which never completes), not relayed; the headers timeout ends the connection.
    socket.write(Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]))
    const ended = await within(closed.then(() => true), 3_000, false)
    watch.saw(received)
    t.notMatch(received, /^HTTP\/1\.1 101/, `${lines[1]}: not switched`)
    t.match(received, /^HTTP\/1\.1 200 /, `${lines[1]}: answered as a plain request`)
    t.ok(ended, `${lines[1]}: the connection is closed once the bytes after it fail to make a request`)
    t.match(received, /HTTP\/1\.1 (400|408) [^]*PAVE_PROXY_REQUEST_(BAD|TIMEOUT)/, `${lines[1]}: with the proxy's error`)
    socket.destroy()
  }
  t.equal(upstream.received.length, upgrades.length)
  for (const received of upstream.received) {
    t.notOk('upgrade' in received.headers, 'no Upgrade upstream')
    t.notOk('http2-settings' in received.headers, 'no HTTP2-Settings upstream')
    t.notMatch(String(received.headers.connection ?? ''), /upgrade/i, 'no Connection: upgrade upstream')
  }
})

t.test('methods the proxy does not forward: TRACE 405, OPTIONS * 400', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const trace = await watch.raw(proxy.port, 'TRACE /v1/sessions HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(trace.status, 405)
  const star = await watch.raw(proxy.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(star.status, 400)
  t.equal(upstream.received.length, 0)
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
