/**
 * Two proxy processes on one Redis admit together no more than rate × time + burst
 * (± one request per process), however the load is spread between them.
 */
import t from 'tap'
import { collect, spawnMain, waitForOutput } from '../helpers/spawn.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startRedis } from '../helpers/redis.js'
import { get, sleep, writeLimitsConfig } from './lib/setup.js'

const RATE = 20
const BURST = 10

t.test('two processes, one budget', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startUpstream({ handler: (_req, res) => { res.writeHead(200).end('{}') } })
  t.teardown(upstream.close)
  const { file, cleanup } = writeLimitsConfig([{ name: 'test', prefix: '/', limit: { requestsPerSecond: RATE, burst: BURST } }], { store: 'redis', redis: { url: redis.url, timeoutMs: 1000 } })
  t.teardown(cleanup)

  const procs = [0, 1].map(() => {
    const child = spawnMain([], { PAVE_PROXY_CONFIG: file, PORT: '0', PAVE_UPSTREAM_URL: upstream.url, PAVE_PROXY_SHUTDOWN_DELAY_MS: '0' })
    t.teardown(() => { child.kill('SIGKILL') })
    return { child, output: collect(child) }
  })
  const urls: string[] = []
  for (const p of procs) {
    urls.push((await waitForOutput(p.output.stdout, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/))[1] as string)
    await waitForOutput(p.output.stdout, /rate-limit store available/)
  }

  // Three callers per process, each sending one request after another for 2 s.
  const started = performance.now()
  let lastSent = started
  const counts = { 200: 0, 429: 0, other: 0 }
  await Promise.all(urls.flatMap((url) => [0, 1, 2].map(async () => {
    while (performance.now() - started < 2000) {
      lastSent = Math.max(lastSent, performance.now())
      const { status } = await get(`${url}/v1/sessions`)
      if (status === 200) counts[200]++
      else if (status === 429) counts[429]++
      else counts.other++
      await sleep(10)
    }
  })))
  const seconds = (lastSent - started) / 1000
  const ceiling = BURST + RATE * seconds + urls.length
  t.equal(counts.other, 0, 'only 200 or 429')
  t.equal(upstream.received.length, counts[200], 'what was admitted reached PAVE')
  t.ok(counts[200] <= ceiling, `admitted ${counts[200]} ≤ burst + rate × ${seconds.toFixed(2)} s + 1 per process = ${ceiling.toFixed(1)}`)
  t.ok(counts[200] >= BURST + RATE * seconds * 0.5, `and the budget was used (${counts[200]} admitted, ${counts[429]} refused)`)
  for (const p of procs) t.notMatch(p.output.stdout(), /rate-limit store unavailable/, 'Redis answered every decision')
  t.notMatch(procs.map((p) => p.output.stdout()).join(''), new RegExp(ACCOUNT.secret))
})
