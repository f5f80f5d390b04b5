import { SecretWatch, sleep } from '../../hostile/lib/watch.js'
import { runAborts, startAbortUpstream } from '../lib/aborts.js'
const watch = new SecretWatch()
const upstream = await startAbortUpstream(watch)
const proxy = await watch.proxy({ upstreamUrl: upstream.url })
for (const [count, conc] of [[4, 1], [400, 25]]) {
  const r = await runAborts(proxy.port, upstream, { count, concurrency: conc })
  await sleep(1500); const o1 = upstream.open(); await sleep(5000); console.log("open after 6.5s", o1, upstream.open())
  console.log(count, r.failures.length, 'up', upstream.cancelledUploads(), 'down', upstream.cancelledDownloads(), 'completed', upstream.completed(), 'open', upstream.open())
}
console.log(proxy.logs.filter(l => l.includes('malformed') || l.includes('lost')).slice(0, 5).map(l => l.slice(0, 300)).join('\n'))
await proxy.close(); await upstream.close()
