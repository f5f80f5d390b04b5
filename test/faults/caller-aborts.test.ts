/**
 * Callers who go away mid-upload or mid-download: the upstream request is
 * cancelled each time, and after thousands of them (PAVE_ABORTS, default 2,000
 * here; the soak runs 10,000) the process holds no more sockets, file
 * descriptors or heap than before.
 */
import t from 'tap'
import { connect } from 'node:net'
import { SecretWatch, sleep, within, yamlConfig } from '../hostile/lib/watch.js'
import { measure, MiB, type Resources } from '../hostile/lib/resources.js'
import { runAborts, startAbortUpstream } from './lib/aborts.js'

const watch = new SecretWatch()
const ABORTS = Number(process.env.PAVE_ABORTS ?? 2_000)

t.test('one caller leaving mid-upload and one mid-download: each upstream request is cancelled', async (t) => {
  const upstream = await startAbortUpstream(watch)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const result = await runAborts(proxy.port, upstream, { count: 4, concurrency: 1 })
  t.same(result, { uploads: 2, downloads: 2, failures: [] })
  await upstream.settled(4, 2_000)
  t.equal(upstream.cancelledUploads(), 2, 'both uploads cancelled upstream')
  t.equal(upstream.cancelledDownloads(), 2, 'both downloads cancelled upstream')
  t.equal(upstream.completed(), 0, 'none completed')
  t.notOk(proxy.logs.some((l) => l.includes('refused a malformed request')), 'a caller leaving is not logged as malformed')
})

t.test(`${ABORTS} aborted requests: sockets, file descriptors and heap back to baseline`, async (t) => {
  const upstream = await startAbortUpstream(watch)
  // Idle pooled connections close after 300 ms, so that "none left open" is quick to see.
  const proxy = await watch.proxy({ upstreamUrl: upstream.url, env: { LOG_LEVEL: 'info' }, configFile: yamlConfig(['upstream:', '  keepAliveTimeoutMs: 300']) })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  // Warm up (JIT, pools, lazily created objects), then take the baseline.
  await runAborts(proxy.port, upstream, { count: 200, concurrency: 20 })
  await upstream.settled(200, 5_000)
  const baseline = await measure()
  const started = Date.now()
  const result = await runAborts(proxy.port, upstream, { count: ABORTS, concurrency: 25 })
  const elapsed = Date.now() - started
  t.same(result.failures, [], 'every abort went as planned')
  await upstream.settled(200 + ABORTS, 10_000)
  t.equal(upstream.cancelledUploads() + upstream.cancelledDownloads(), 200 + ABORTS, 'every upstream request was cancelled')
  t.equal(upstream.completed(), 0, 'none ran to completion')
  // Sockets close asynchronously: give them a moment, then compare.
  let after: Resources = await measure()
  for (let i = 0; i < 40 && (after.sockets > baseline.sockets || after.fds > baseline.fds || upstream.open() > 0); i++) {
    await sleep(100)
    after = await measure()
  }
  const logBytes = proxy.logs.reduce((sum, line) => sum + line.length, 0)
  t.comment(`${ABORTS} aborts in ${elapsed} ms (the test keeps ${(logBytes / MiB).toFixed(1)} MiB of log lines for the secret scan); fds ${baseline.fds} → ${after.fds}, sockets ${baseline.sockets} → ${after.sockets}, ` +
    `heap ${(baseline.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB, rss ${(baseline.rss / MiB).toFixed(1)} → ${(after.rss / MiB).toFixed(1)} MiB`)
  t.ok(after.fds <= baseline.fds + 2, `file descriptors back to baseline (${baseline.fds} → ${after.fds})`)
  t.ok(after.sockets <= baseline.sockets + 2, `sockets back to baseline (${baseline.sockets} → ${after.sockets})`)
  t.equal(upstream.open(), 0, 'no upstream connection left open')
  t.ok(after.heapUsed - baseline.heapUsed < 8 * MiB, `heap back to baseline (+${((after.heapUsed - baseline.heapUsed) / MiB).toFixed(2)} MiB)`)
  const next = await watch.request(`${proxy.url}/v1/callbacks`)
  t.equal(next.status, 200, 'the proxy keeps serving')
})

t.test('a caller reset (RST) mid-request is a lost connection, not a malformed request', async (t) => {
  const upstream = await startAbortUpstream(watch)
  const proxy = await watch.proxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const socket = connect(proxy.port, '127.0.0.1')
  socket.on('error', () => {})
  await new Promise<void>((resolve) => socket.on('connect', () => resolve()))
  socket.write('POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":')
  await upstream.settled(0, 100)
  await sleep(50)
  socket.resetAndDestroy()
  await within(upstream.settled(1, 2_000), 2_500, undefined)
  t.equal(upstream.cancelledUploads(), 1, 'the upstream request was cancelled')
  await sleep(50)
  t.ok(proxy.logs.some((l) => l.includes('a caller\'s connection was lost') || l.includes('"aborted":true')), 'logged as a lost connection')
  t.notOk(proxy.logs.some((l) => l.includes('refused a malformed request')), 'not as malformed')
})

t.test('no secret or minted token in any log line or response', async (t) => { watch.check(t) })
