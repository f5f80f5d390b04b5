import t from 'tap'
import { request } from 'undici'
import { computeToken, PAVE_TIMESTAMP_PATTERN } from '../../src/signing/pave-token.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

t.test('a plain call arrives at the upstream signed, and the answer comes back as sent', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const res = await request(`${proxy.url}/v1/sessions/UCB-C3NPR4AGQZ/photos?limit=5`)
  const body = await res.body.json() as Record<string, unknown>
  t.equal(res.statusCode, 200)
  t.same(body, { method: 'GET', url: '/v1/sessions/UCB-C3NPR4AGQZ/photos?limit=5', signedBy: ACCOUNT.username, bytes: 0 })

  t.equal(upstream.received.length, 1)
  const received = upstream.received[0]!
  t.equal(received.headers['api-key'], ACCOUNT.apiKey)
  const timestamp = received.headers['api-timestamp'] as string
  t.match(timestamp, PAVE_TIMESTAMP_PATTERN)
  t.ok(Math.abs(Date.parse(timestamp) - Date.now()) < 5_000, 'timestamp is now, in UTC')
  t.equal(received.headers['api-token'], computeToken(ACCOUNT, timestamp))
  t.equal(received.headers.host, `127.0.0.1:${upstream.port}`, 'Host is the upstream\'s')
  t.equal(res.headers['x-request-id'], received.headers['x-request-id'], 'request id sent upstream and returned')
})

t.test('a JSON POST body is forwarded byte for byte', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const payload = JSON.stringify({ session: { theme: 'LITE' }, vehicle: { vin: '1HGCM82633A004352' }, note: 'ünïcödé' })
  const res = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: payload, headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(upstream.received[0]!.body.toString('utf8'), payload)
  t.equal(upstream.received[0]!.headers['content-type'], 'application/json')
})
