import t from 'tap'
import { rawRequest } from '../helpers/raw-http.js'
import { computeToken } from '../../src/signing/pave-token.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

t.test('caller-sent API-* headers in any case and any count are replaced by the proxy\'s', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const answer = await rawRequest(proxy.port, [
    'GET /v1/callbacks HTTP/1.1',
    'Host: evil.example',
    'API-Key: caller-key',
    'api-key: caller-key-2',
    'API-TOKEN: caller-token',
    'Api-Token: caller-token-2',
    'api-timestamp: 2000-01-01T00:00:00Z',
    'API-Timestamp: 2000-01-01T00:00:01Z',
    'Proxy-Authorization: Basic Y2FsbGVyOnNlY3JldA==',
    'Connection: close',
    '', ''
  ].join('\r\n'))
  t.equal(answer.status, 200)
  t.equal(upstream.received.length, 1)
  const received = upstream.received[0]!
  t.equal(received.signedBy, ACCOUNT.username)
  const names = received.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
  t.equal(names.filter((n) => n === 'api-key').length, 1, 'one API-Key')
  t.equal(names.filter((n) => n === 'api-token').length, 1, 'one API-Token')
  t.equal(names.filter((n) => n === 'api-timestamp').length, 1, 'one API-Timestamp')
  t.equal(received.headers['api-key'], ACCOUNT.apiKey)
  t.equal(received.headers['api-token'], computeToken(ACCOUNT, received.headers['api-timestamp'] as string))
  t.notOk('proxy-authorization' in received.headers)
  t.equal(received.headers.host, `127.0.0.1:${upstream.port}`, 'forged Host replaced by the upstream\'s')
})

t.test('a Connection header naming the PAVE headers cannot remove the proxy\'s own', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  for (const connection of ['API-Key, API-Token, API-Timestamp', 'close, api-token', 'keep-alive, API-KEY']) {
    const answer = await rawRequest(proxy.port, [
      'GET /v1/callbacks HTTP/1.1', 'Host: x', `Connection: ${connection}`, 'Proxy-Connection: api-token', 'Keep-Alive: api-key', 'TE: api-timestamp',
      'API-Token: caller-token', '', ''
    ].join('\r\n'))
    t.equal(answer.status, 200, connection)
  }
  t.equal(upstream.received.length, 3)
  for (const received of upstream.received) {
    t.equal(received.signedBy, ACCOUNT.username)
    t.notOk('connection' in received.headers && /api-/i.test(String(received.headers.connection)), 'no Connection naming API-* upstream')
    t.notOk('proxy-connection' in received.headers)
    t.notOk('te' in received.headers)
  }
})
