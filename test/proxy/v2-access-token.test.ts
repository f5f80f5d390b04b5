/**
 * PAVE's v2 endpoints authenticate with `API-Access-Token: <API key>`: a caller's
 * own, under any case or with `_` for `-`, is dropped like the other credential
 * names, and the account's API key is set on every `/v2/` path (and only there).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../helpers/raw-http.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

const CALLER_TOKENS = ['API-Access-Token: caller-1', 'api-access-token: caller-2', 'API_ACCESS_TOKEN: caller-3', 'api_access_token: caller-4']

t.test('v2 paths carry exactly one API-Access-Token, the account\'s API key', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const answer = await rawRequest(proxy.port, [
    'POST /v2/capture/sessions/UCB-C3NPR4AGQZ/resend HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 2',
    ...CALLER_TOKENS, 'Connection: close', '', '{}'
  ].join('\r\n'), 5_000, true)
  t.equal(answer.status, 200)
  const received = upstream.received[0]!
  t.equal(received.url, '/v2/capture/sessions/UCB-C3NPR4AGQZ/resend')
  const names = received.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase().replaceAll('_', '-'))
  t.equal(names.filter((n) => n === 'api-access-token').length, 1, 'one API-Access-Token')
  t.equal(received.headers['api-access-token'], ACCOUNT.apiKey)
  t.notMatch(received.rawHeaders.join('\n'), /caller-\d/, 'no caller-sent token survives')
  t.equal(received.signedBy, ACCOUNT.username, 'the v1 headers are sent too (harmless)')
})

t.test('v1 paths never carry API-Access-Token, and the caller\'s is dropped there too', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const target of ['/v1/sessions', '/v2', '/v20/x', '/x/v2/y']) {
    const answer = await rawRequest(proxy.port, [`GET ${target} HTTP/1.1`, 'Host: x', ...CALLER_TOKENS, 'Connection: close', '', ''].join('\r\n'), 5_000, true)
    t.equal(answer.status, 200, target)
  }
  for (const received of upstream.received) {
    t.notOk('api-access-token' in received.headers, received.url)
    t.notMatch(received.rawHeaders.join('\n'), /caller-\d|access.token/i, received.url)
  }
})

t.test('an account under a prefix: the upstream path decides', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-v2-'))
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'accounts:\n  - { name: other, prefix: /other, username: other-user, apiKey: other-key-not-real, apiSecret: other-secret-not-real }\n')
  const upstream = await startUpstream()
  const proxy = await startProxy({
    upstreamUrl: upstream.url,
    configFile: file
  })
  t.teardown(async () => { await proxy.close(); await upstream.close(); rmSync(dir, { recursive: true, force: true }) })
  const answer = await rawRequest(proxy.port, 'POST /other/v2/capture/sessions/K/resend HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 5_000, true)
  t.equal(answer.status, 403, 'the test upstream knows only the default account\'s v1 signature')
  t.equal(upstream.received[0]?.url, '/v2/capture/sessions/K/resend')
  t.equal(upstream.received[0]?.headers['api-access-token'], 'other-key-not-real')
})
