import t from 'tap'
import { request } from 'undici'
import { createMetrics } from '../../src/observe/metrics.js'
import { startProxy } from '../helpers/proxy.js'
import { FORBIDDEN_BODY, startUpstream } from '../helpers/upstream.js'

t.test('pave_proxy_requests_queued shows requests waiting for a place; pave_proxy_upstream_responses_total counts PAVE\'s answers by status', async (t) => {
  const held: Array<() => void> = []
  const upstream = await startUpstream({
    handler: (req, res) => {
      if (req.url === '/v1/forbidden') {
        res.writeHead(403, { 'content-type': 'application/json' }).end(FORBIDDEN_BODY)
        return
      }
      held.push(() => res.writeHead(200).end('ok'))
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url, overload: { maxInFlight: 1 } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const scrape = async (): Promise<string> => await (await request(`${proxy.url}/metrics`)).body.text()

  const first = request(`${proxy.url}/v1/a`)
  while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const second = request(`${proxy.url}/v1/b`)
  const third = request(`${proxy.url}/v1/c`)
  let text = ''
  for (let i = 0; i < 200 && !/pave_proxy_requests_queued 2\n/.test(text); i++) {
    text = await scrape()
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.match(text, /pave_proxy_requests_queued 2\n/, 'two requests wait behind the one in flight')
  for (const response of [first, second, third]) {
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    ;(held.shift() as () => void)()
    t.equal((await response).statusCode, 200)
  }
  for (const response of [await first, await second, await third]) await response.body.dump()
  const refused = await request(`${proxy.url}/v1/forbidden`)
  t.equal(refused.statusCode, 403)
  await refused.body.dump()

  text = await scrape()
  t.match(text, /pave_proxy_requests_queued 0\n/, 'the queue is empty again')
  t.match(text, /pave_proxy_upstream_responses_total\{account="default",status="200"\} 3\n/)
  t.match(text, /pave_proxy_upstream_responses_total\{account="default",status="403"\} 1\n/, 'PAVE\'s 403, told apart from the proxy\'s own 4xx')
})

t.test('metrics on their own: no queue to read is an empty queue, and no reload yet is a successful one', async (t) => {
  const metrics = createMetrics({ processMetrics: false })
  const text = await metrics.registry.metrics()
  t.match(text, /pave_proxy_requests_queued 0\n/)
  t.match(text, /pave_proxy_config_last_reload_successful 1\n/)
  t.notMatch(text, /process_cpu/, 'no process metrics when asked not to')
})
