/**
 * Slow callers are bounded by timeouts and do not hold anything for long: headers
 * dribbled (slowloris) end in 408 at the headers timeout, a dribbled body at the
 * request timeout, a caller that stops reading a large response is disconnected
 * after the send timeout; memory stays flat and other callers are unaffected.
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { SecretWatch, sleep, within, yamlConfig } from './lib/watch.js'
import { MiB } from './lib/resources.js'

const watch = new SecretWatch()
const HEADERS_TIMEOUT_MS = 600
const REQUEST_TIMEOUT_MS = 1_500
const TIMEOUTS = yamlConfig(['inbound:', `  headersTimeoutMs: ${HEADERS_TIMEOUT_MS}`, `  requestTimeoutMs: ${REQUEST_TIMEOUT_MS}`])

interface Dribble { socket: Socket, received: () => string, closedAt: Promise<number>, stop: () => void }

/** Opens a connection, writes `head`, then one byte of `rest` every `everyMs` until closed. */
function dribble (port: number, head: string, rest: string, everyMs: number): Dribble {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.on('error', () => {})
  socket.write(head)
  let i = 0
  const timer = setInterval(() => {
    if (socket.destroyed || i >= rest.length) { clearInterval(timer); return }
    socket.write(rest[i++] as string)
  }, everyMs)
  const closedAt = new Promise<number>((resolve) => socket.on('close', () => { clearInterval(timer); resolve(Date.now()) }))
  return { socket, received: () => received, closedAt, stop: () => { clearInterval(timer); socket.destroy() } }
}

t.test('slowloris: headers dribbled get 408 at the headers timeout; other callers are served meanwhile', async (t) => {
  const upstream = await watch.upstream()
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, configFile: TIMEOUTS })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const started = Date.now()
  const attackers = Array.from({ length: 50 }, () => dribble(proxy.port, 'GET /v1/sessions HTTP/1.1\r\n', 'X-Dribble: ' + 'a'.repeat(10_000), 20))
  t.teardown(() => { for (const a of attackers) a.stop() })
  const latencies: number[] = []
  while (Date.now() - started < HEADERS_TIMEOUT_MS) {
    const before = Date.now()
    const res = await watch.request(`${proxy.url}/v1/sessions/OK`)
    latencies.push(Date.now() - before)
    t.equal(res.status, 200)
    await sleep(50)
  }
  const closedAt = await Promise.all(attackers.map((a) => within(a.closedAt, 5_000, Infinity)))
  for (const attacker of attackers) watch.saw(attacker.received())
  const slowest = Math.max(...closedAt) - started
  const fastest = Math.min(...closedAt) - started
  t.ok(fastest >= HEADERS_TIMEOUT_MS - 50, `none cut before the timeout (${fastest} ms)`)
  t.ok(slowest <= HEADERS_TIMEOUT_MS + 1_000, `all cut within a second of it (${slowest} ms)`)
  t.ok(attackers.every((a) => /^HTTP\/1\.1 408 [^]*PAVE_PROXY_REQUEST_TIMEOUT/.test(a.received())), 'each got 408 with the proxy\'s code')
  t.ok(Math.max(...latencies) < 500, `other callers served throughout (slowest ${Math.max(...latencies)} ms)`)
  t.equal(upstream.received.filter((r) => r.url !== '/v1/sessions/OK').length, 0, 'nothing of the dribbled requests went upstream')
})

t.test('a dribbled body ends in 408 at the request timeout and the upstream request is aborted', async (t) => {
  const upstreamSaw: Array<{ aborted: boolean }> = []
  const upstream = await watch.upstream({
    bufferBody: false,
    handler: (req, res) => {
      const seen = { aborted: false }
      upstreamSaw.push(seen)
      req.on('error', () => {})
      req.on('close', () => { if (!req.complete) seen.aborted = true })
      req.resume()
      req.on('end', () => res.writeHead(200).end('{}'))
    }
  })
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, configFile: TIMEOUTS })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const started = Date.now()
  const slow = dribble(proxy.port, 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n', '{'.repeat(1000), 50)
  t.teardown(slow.stop)
  const closedAt = await within(slow.closedAt, 5_000, Infinity)
  watch.saw(slow.received())
  t.match(slow.received(), /^HTTP\/1\.1 408 [^]*PAVE_PROXY_REQUEST_TIMEOUT/)
  t.ok(closedAt - started >= REQUEST_TIMEOUT_MS - 50 && closedAt - started <= REQUEST_TIMEOUT_MS + 1_000, `cut after ${closedAt - started} ms`)
  await sleep(100)
  t.same(upstreamSaw, [{ aborted: true }], 'the upstream request was aborted')
})

/** An upstream that streams `size` bytes of filler, counting what it managed to write. */
async function bigUpstream (size: number): Promise<{ url: string, wrote: () => number, aborted: () => number, close: () => Promise<void> }> {
  let wrote = 0
  let aborted = 0
  const upstream = await watch.upstream({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
      const chunk = Buffer.alloc(64 * 1024, 120)
      let sent = 0
      const pump = (): void => {
        while (sent < size) {
          sent += chunk.length
          wrote += chunk.length
          if (!res.write(chunk)) { res.once('drain', pump); return }
        }
        res.end()
      }
      res.on('close', () => { if (!res.writableFinished) aborted++ })
      pump()
    }
  })
  return { url: upstream.url, wrote: () => wrote, aborted: () => aborted, close: upstream.close }
}

t.test('a caller that stops reading a large response is cut after the send timeout; memory stays flat', async (t) => {
  const big = await bigUpstream(256 * MiB)
  const proxy = await watch.proxy({ upstreamUrl: big.url, overload: { sendTimeoutMs: 500 } })
  t.teardown(async () => { await proxy.close(); await big.close() })
  const rssBefore = process.memoryUsage().rss
  const readers: Socket[] = []
  const started = Date.now()
  for (let i = 0; i < 10; i++) {
    const socket = connect(proxy.port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write('GET /v1/sessions/ABC/photos HTTP/1.1\r\nHost: x\r\n\r\n')
    socket.pause() // never reads
    readers.push(socket)
  }
  t.teardown(() => { for (const socket of readers) socket.destroy() })
  await sleep(300)
  const other = await watch.request(`${proxy.url}/v1/sessions/OTHER`, { method: 'HEAD' })
  t.equal(other.status, 200, 'another caller is served meanwhile')
  // Cutting a stalled caller cancels its upstream response: wait for all ten.
  while (big.aborted() < 10 && Date.now() - started < 10_000) await sleep(50)
  const elapsed = Date.now() - started
  const rssGrowth = process.memoryUsage().rss - rssBefore
  t.equal(big.aborted(), 10, `every stalled caller cut and its upstream response cancelled (after ${elapsed} ms)`)
  t.ok(elapsed < 5_000, 'within a few send timeouts')
  const cut = proxy.logs.filter((line) => line.includes('"msg":"request completed"') && line.includes('"aborted":true'))
  t.equal(cut.length, 10, 'ten aborted responses in the access log')
  // What the upstream wrote sits in kernel socket buffers (several MiB per loopback connection), not in the proxy.
  t.ok(big.wrote() < 1024 * MiB, `the upstream was held back (${(big.wrote() / MiB).toFixed(1)} MiB of 2560 MiB written)`)
  t.ok(rssGrowth < 64 * MiB, `memory stayed flat (${(rssGrowth / MiB).toFixed(1)} MiB)`)
})

t.test('a slow but steady reader and a slow upstream are not mistaken for a stalled caller', async (t) => {
  const big = await bigUpstream(MiB)
  const proxy = await watch.proxy({ upstreamUrl: big.url, overload: { sendTimeoutMs: 500 } })
  t.teardown(async () => { await proxy.close(); await big.close() })
  const socket = connect(proxy.port, '127.0.0.1')
  let bytes = 0
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length
    socket.pause()
    setTimeout(() => socket.resume(), 150) // slower than the proxy, never silent for the send timeout
  })
  const done = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.write('GET /v1/sessions/ABC/photos HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await within(done, 30_000, undefined)
  t.ok(bytes > MiB, `the whole response arrived (${bytes} bytes)`)

  const slowUpstream = await watch.upstream({ handler: (_req, res) => { setTimeout(() => res.writeHead(200).end('late'), 900) } })
  const slowProxy = await watch.proxy({ upstreamUrl: slowUpstream.url, overload: { sendTimeoutMs: 300 } })
  t.teardown(async () => { await slowProxy.close(); await slowUpstream.close() })
  const late = await watch.request(`${slowProxy.url}/v1/late`)
  t.equal(late.status, 200, 'a caller waiting on a slow upstream is not cut')
  t.equal(late.body, 'late')
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
