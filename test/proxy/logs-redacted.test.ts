import t from 'tap'
import { request } from 'undici'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

t.test('neither the secret nor any token reaches a log line or a response, even at trace', async (t) => {
  const upstream = await startUpstream({
    handler: (req, res, received) => {
      if (req.url === '/fail') { req.socket.destroy(); return }
      res.writeHead(received.signedBy !== undefined ? 200 : 403, { 'content-type': 'application/json' }).end('{}')
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const bodies: string[] = []
  const headerDumps: string[] = []
  for (const [path, headers] of [
    ['/v1/sessions', { authorization: 'Bearer caller-bearer-token-123', 'api-token': 'caller-sent-token-456' }],
    ['/fail', {}],
    ['/v1/../escape', {}],
    ['/nope', { 'x-request-id': 'trace-me' }]
  ] as const) {
    const res = await request(proxy.url + path, { headers })
    bodies.push(await res.body.text())
    headerDumps.push(JSON.stringify(res.headers))
  }
  const tokens = upstream.received.map((r) => r.headers['api-token'] as string)
  t.ok(tokens.length >= 2, 'tokens were minted')
  const everything = [...proxy.logs, ...bodies, ...headerDumps].join('\n')
  t.ok(proxy.logs.length > 0)
  t.notOk(everything.includes(ACCOUNT.secret), 'secret absent')
  for (const token of tokens) t.notOk(everything.includes(token), 'minted token absent')
  t.notOk(everything.includes('caller-bearer-token-123'), 'caller authorization absent')
  t.notOk(everything.includes('caller-sent-token-456'), 'caller API-Token absent')
  const access = proxy.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request completed')
  t.equal(access.length, 4, 'one access line per request')
  t.match(access[0], { method: 'GET', url: '/v1/sessions', status: 200, account: 'default' })
  t.type(access[0]?.durationMs, 'number')
  t.type(access[0]?.bytesOut, 'number')
  t.type(access[0]?.reqId, 'string')
})

t.test('below info, no access line is written', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { LOG_LEVEL: 'warn' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/sessions`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.notOk(proxy.logs.some((l) => l.includes('request completed')))
})
