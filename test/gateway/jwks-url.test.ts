/**
 * A JWT caller's `jwksUrl`: fetched over verified HTTPS (the upstream's private CA is
 * trusted), through the egress proxy settings, cached; when the URL fails, the last
 * good keys stay. And what the fetcher refuses: other statuses, non-JSON, oversized.
 */
import t from 'tap'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { makeTestPki, type KeyPair } from '../fixtures/tls.js'
import { startEgressProxy } from '../fixtures/egress-proxy.js'
import { AUDIENCE, ISSUER, SUBJECT, jwks, signingKey, token } from '../fixtures/jwt.js'
import { createJwksFetcher, MAX_JWKS_BYTES } from '../../src/upstream/jwks-fetch.js'
import { testConfig } from '../helpers/proxy.js'
import { startGateway } from './lib/gateway.js'

const pki = makeTestPki()
t.teardown(pki.cleanup)
const key = await signingKey('RS256', 'url-1')
const other = await signingKey('ES256', 'url-2')

interface JwksServer { url: string, served: string[], answer: { status: number, body: string }, close: () => Promise<void> }

async function startJwksServer (pair: KeyPair, body: string): Promise<JwksServer> {
  const served: string[] = []
  const state: JwksServer = { url: '', served, answer: { status: 200, body }, close: async () => {} }
  const server: Server = createServer({ cert: pair.cert, key: pair.key }, (req, res) => {
    served.push(req.url ?? '')
    res.writeHead(state.answer.status, { 'content-type': 'application/json' }).end(state.answer.body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/openid/v1/jwks?v=1`
  state.close = async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) }
  return state
}

function callers (url: string): string[] {
  return [
    'callers:',
    '  - name: reporting',
    `    jwt: { issuer: "${ISSUER}", audience: ${AUDIENCE}, subject: "${SUBJECT}", jwksUrl: "${url}" }`,
    '    allow: [{ methods: [GET], paths: ["/**"] }]'
  ]
}

t.test('fetched over verified HTTPS, cached, the last good keys kept when the URL fails', async (t) => {
  const server = await startJwksServer(pki.server, jwks(key))
  t.teardown(server.close)
  const gw = await startGateway(t, { yaml: callers(server.url), env: { PAVE_UPSTREAM_CA_FILE: pki.caFile }, jwksRefreshIntervalMs: 200 })
  t.equal((await gw.call('/v1/sessions', { token: await token(key) })).status, 200)
  t.equal((await gw.call('/v1/sessions', { token: await token(key, { exp: Math.floor(Date.now() / 1000) + 100 }) })).status, 200)
  t.same(server.served, ['/openid/v1/jwks?v=1'], 'fetched once, at the start')
  server.answer = { status: 503, body: 'down' }
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.equal((await gw.call('/v1/sessions', { token: await token(other) })).status, 401, 'an unknown kid while the URL fails')
  t.equal((await gw.call('/v1/sessions', { token: await token(key, { exp: Math.floor(Date.now() / 1000) + 200 }) })).status, 200, 'the last good keys stay')
  t.equal(server.served.length, 2)
  const logs = gw.proxy.logs.join('\n')
  t.match(logs, /"source":"https:\/\/127\.0\.0\.1:\d+\/openid\/v1\/jwks","reason":"the JWKS URL answered 503"/, 'logged without the query')
  server.answer = { status: 200, body: jwks(key, other) }
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.equal((await gw.call('/v1/sessions', { token: await token(other) })).status, 200, 'back, with the rotated set')
})

t.test('through the egress proxy; an untrusted certificate yields no keys', async (t) => {
  const server = await startJwksServer(pki.server, jwks(key))
  t.teardown(server.close)
  const egress = await startEgressProxy()
  t.teardown(egress.close)
  const gw = await startGateway(t, { yaml: callers(server.url), env: { PAVE_UPSTREAM_CA_FILE: pki.caFile, HTTPS_PROXY: egress.url } })
  t.equal((await gw.call('/v1/sessions', { token: await token(key) })).status, 200)
  t.same(egress.visits.map((visit) => [visit.method, visit.target]), [['CONNECT', new URL(server.url).host]])

  const untrusted = await startJwksServer(pki.selfSigned, jwks(key))
  t.teardown(untrusted.close)
  const refused = await startGateway(t, { yaml: callers(untrusted.url) })
  t.equal((await refused.call('/v1/sessions', { token: await token(key) })).status, 401)
  t.match(refused.proxy.logs.join('\n'), /"reason":"cannot fetch the JWKS URL \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)"/)
})

t.test('the fetcher refuses other statuses, non-JSON, oversized documents; a non-JWKS keeps no keys', async (t) => {
  const server = await startJwksServer(pki.server, 'x')
  t.teardown(server.close)
  const fetcher = createJwksFetcher(testConfig({ upstreamUrl: 'https://127.0.0.1', env: { PAVE_UPSTREAM_CA_FILE: pki.caFile } }).upstream)
  t.teardown(fetcher.close)
  server.answer = { status: 404, body: 'no' }
  await t.rejects(fetcher.fetch(server.url), { message: 'the JWKS URL answered 404' })
  server.answer = { status: 200, body: '<html>' }
  await t.rejects(fetcher.fetch(server.url), { message: 'the JWKS URL did not answer JSON' })
  server.answer = { status: 200, body: JSON.stringify({ keys: [], pad: 'x'.repeat(MAX_JWKS_BYTES) }) }
  await t.rejects(fetcher.fetch(server.url), { message: `the JWKS is larger than ${MAX_JWKS_BYTES} bytes` })
  server.answer = { status: 200, body: '{"keys":[]}' }
  t.same(await fetcher.fetch(server.url), { keys: [] })

  server.answer = { status: 200, body: JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }) }
  const gw = await startGateway(t, { yaml: callers(server.url), env: { PAVE_UPSTREAM_CA_FILE: pki.caFile } })
  t.equal((await gw.call('/v1/sessions', { token: await token(key) })).status, 401)
  t.match(gw.proxy.logs.join('\n'), /"reason":"the JWKS holds a key that is not an RSA, EC or OKP public key \(symmetric keys are never accepted\)"/)
  t.notOk(gw.proxy.logs.join('\n').includes('c2VjcmV0'), 'the key is never quoted')
  const unused = createJwksFetcher(testConfig({ upstreamUrl: 'https://127.0.0.1' }).upstream)
  await unused.close() // nothing was ever opened
})
