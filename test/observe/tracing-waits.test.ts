import t from 'tap'
import Fastify from 'fastify'
import { request } from 'undici'
import { createInboundPipeline, refusal, type InboundStage } from '../../src/inbound/pipeline.js'
import { buildApp } from '../../src/app.js'
import type { AddressInfo } from 'node:net'
import { logCapture, testConfig } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { SPAN_KIND, startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js'

t.test('the pipeline tells its observer of every wait and how it ended; stages that answer at once are not reported', async (t) => {
  const seen: Array<[string, string, boolean]> = []
  const verdicts: Record<string, () => Promise<ReturnType<typeof refusal> | undefined>> = {
    '/passed': async () => undefined,
    '/refused': async () => refusal('PAVE_PROXY_OVERLOADED'),
    '/broken': async () => { throw new Error('stage bug') }
  }
  const stages: InboundStage[] = [
    { name: 'instant', check: () => undefined },
    { name: 'waits', check: async (request) => { await new Promise((resolve) => setTimeout(resolve, 20)); return await (verdicts[request.url] as () => Promise<undefined>)() } }
  ]
  const pipeline = createInboundPipeline(stages, (_request, stage, startedAt, outcome) => { seen.push([stage, outcome, performance.now() - startedAt >= 15]) })
  const app = Fastify({ logger: false })
  app.addHook('onRequest', (req, reply, done) => { pipeline(req, reply, done) })
  app.get('/*', async () => 'passed')
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  t.equal((await request(`${url}/passed`)).statusCode, 200)
  t.equal((await request(`${url}/refused`)).statusCode, 503)
  t.equal((await request(`${url}/broken`)).statusCode, 500)
  t.same(seen, [['waits', 'passed', true], ['waits', 'PAVE_PROXY_OVERLOADED', true], ['waits', 'PAVE_PROXY_INTERNAL', true]])
})

t.test('the caller\'s name (request.caller, set by the identity stage) is on the server span', async (t) => {
  const receiver = await startOtlpReceiver()
  const upstream = await startUpstream()
  const config = testConfig({ upstreamUrl: upstream.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } })
  const app = await buildApp(config, { logStream: logCapture().stream })
  // Stands in for the callers branch's identity stage, which sets request.caller the same way.
  app.addHook('onRequest', (request, _reply, done) => { (request as unknown as { caller: { name: string, proof: string } }).caller = { name: 'intake-app', proof: 'token' }; done() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close(); await upstream.close(); await receiver.close() })
  const res = await request(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/sessions`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  await app.tracing?.flush()
  const spans = await receiver.waitForSpans(2)
  const server = spans.find((s) => s.kind === SPAN_KIND.server) as ReceivedSpan
  t.equal(server.attributes['pave_proxy.caller'], 'intake-app')
})
