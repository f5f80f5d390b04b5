import t from 'tap'
import Fastify from 'fastify'
import { request } from 'undici'
import { createInboundPipeline, refusal, type InboundStage } from '../../src/inbound/pipeline.js'

/** A Fastify app whose one route answers "passed" once the given stages let it through. */
async function appWith (stages: InboundStage[]): Promise<{ url: string, close: () => Promise<void> }> {
  const app = Fastify({ logger: false })
  const pipeline = createInboundPipeline(stages)
  app.addHook('onRequest', (req, reply, done) => { pipeline(req, reply, done) })
  app.get('/', async () => 'passed')
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close: async () => { await app.close() } }
}

t.test('stages run in order; the first refusal answers and later stages never run', async (t) => {
  const ran: string[] = []
  const stage = (name: string, verdict?: ReturnType<typeof refusal>): InboundStage => ({ name, check: () => { ran.push(name); return verdict } })
  const app = await appWith([stage('a'), stage('b', refusal('PAVE_PROXY_REQUEST_FORBIDDEN')), stage('c')])
  t.teardown(app.close)
  const res = await request(app.url)
  t.equal(res.statusCode, 403)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_REQUEST_FORBIDDEN')
  t.same(await res.body.json(), { message: 'This caller is not allowed to use the proxy.', code: 'PAVE_PROXY_REQUEST_FORBIDDEN' })
  t.same(ran, ['a', 'b'])
})

t.test('a stage that waits: passing continues with the next stage, a refusal carries its headers', async (t) => {
  const ran: string[] = []
  let refuse = false
  const app = await appWith([
    { name: 'waits', check: async () => { ran.push('waits'); await new Promise((resolve) => setTimeout(resolve, 5)); return refuse ? { code: 'PAVE_PROXY_OVERLOADED', headers: { 'retry-after': '7' } } : undefined } },
    { name: 'after', check: () => { ran.push('after'); return undefined } }
  ])
  t.teardown(app.close)
  const passed = await request(app.url)
  t.equal(passed.statusCode, 200)
  t.equal(await passed.body.text(), 'passed')
  t.same(ran, ['waits', 'after'])
  refuse = true
  ran.length = 0
  const refused = await request(app.url)
  t.equal(refused.statusCode, 503)
  t.equal(refused.headers['retry-after'], '7')
  t.equal(refused.headers['x-pave-proxy-error'], 'PAVE_PROXY_OVERLOADED')
  await refused.body.dump()
  t.same(ran, ['waits'])
})

t.test('a stage that fails is the proxy\'s fault: 500 PAVE_PROXY_INTERNAL, and nothing after it runs', async (t) => {
  let after = false
  const app = await appWith([
    { name: 'broken', check: async () => { throw new Error('stage bug') } },
    { name: 'after', check: () => { after = true; return undefined } }
  ])
  t.teardown(app.close)
  const res = await request(app.url)
  t.equal(res.statusCode, 500)
  t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_INTERNAL')
  t.notMatch(await res.body.text(), /stage bug/, 'the error\'s message stays inside')
  t.equal(after, false)
})

t.test('refusals without headers are made once per code', async (t) => {
  t.equal(refusal('PAVE_PROXY_REQUEST_BAD'), refusal('PAVE_PROXY_REQUEST_BAD'))
  t.ok(Object.isFrozen(refusal('PAVE_PROXY_REQUEST_BAD')))
})

t.test('a caller gone while a stage waited gets nothing written', async (t) => {
  let seen: import('fastify').FastifyReply | undefined
  const settled = new Promise<void>((resolve) => {
    void appWith([{
      name: 'slow',
      check: async (_request, reply) => {
        seen = reply
        await new Promise((resolve) => setTimeout(resolve, 150))
        setImmediate(resolve)
        return refusal('PAVE_PROXY_OVERLOADED')
      }
    }]).then((app) => {
      t.teardown(app.close)
      const controller = new AbortController()
      request(app.url, { signal: controller.signal }).catch(() => {})
      setTimeout(() => { controller.abort() }, 30)
    })
  })
  await settled
  t.equal(seen?.raw.destroyed, true, 'the caller had gone')
  t.equal(seen?.raw.headersSent, false, 'no answer was written to it')
})
