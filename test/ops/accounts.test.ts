import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream, type TestAccount } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest } from '../helpers/raw-http.js'

const TEST: TestAccount = { username: 'acme-test', apiKey: 'test-key-not-real', secret: 'test-secret-not-real' }
const PROD: TestAccount = { username: 'acme', apiKey: 'prod-key-not-real', secret: 'prod-secret-not-real' }

function configFile (withDefault: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-accounts-'))
  const path = join(dir, 'pave-proxy.yaml')
  writeFileSync(path, [
    'accounts:',
    `  - { name: test, prefix: /test, username: ${TEST.username}, apiKey: ${TEST.apiKey}, apiSecret: ${TEST.secret} }`,
    ...(withDefault ? [`  - { name: prod, prefix: /, username: ${PROD.username}, apiKey: ${PROD.apiKey}, apiSecret: ${PROD.secret} }`] : [])
  ].join('\n'))
  return path
}

t.test('each prefix signs with its own account and is removed upstream', async (t) => {
  const upstream = await startUpstream({ accounts: [TEST, PROD] })
  const proxy = await startProxy({ upstreamUrl: upstream.url, configFile: configFile(true), env: { PAVE_USERNAME: '', PAVE_API_KEY: '', PAVE_API_SECRET: '' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const cases: Array<[string, string, string]> = [
    ['/test/v1/sessions?x=1', '/v1/sessions?x=1', TEST.username],
    ['/test', '/', TEST.username],
    ['/test/', '/', TEST.username],
    ['/v1/sessions', '/v1/sessions', PROD.username],
    ['/testing/v1/sessions', '/testing/v1/sessions', PROD.username],
    ['/Test/v1/sessions', '/Test/v1/sessions', PROD.username]
  ]
  for (const [target] of cases) {
    const res = await request(proxy.url + target)
    t.equal(res.statusCode, 200, target)
    await res.body.dump()
  }
  t.same(upstream.received.map((r) => [r.url, r.signedBy]), cases.map(([, path, who]) => [path, who]))
  t.equal(proxy.app.signer.cachedTimestamp('test') !== undefined && proxy.app.signer.cachedTimestamp('prod') !== undefined, true, 'one cache entry per account')
})

t.test('paths that could reach another account are refused, upstream untouched', async (t) => {
  const upstream = await startUpstream({ accounts: [TEST, PROD] })
  const proxy = await startProxy({ upstreamUrl: upstream.url, configFile: configFile(true), env: { PAVE_USERNAME: '', PAVE_API_KEY: '', PAVE_API_SECRET: '' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const target of ['/test/../v1/x', '/v1/../test/v1/x', '/test/%2e%2e/v1/x', '/test/%2E%2e/v1', '/test%2fv1/x', '/test%2Fv1',
    '//test/v1/x', '/test//v1/x', '/test/./v1', '/test\\..\\v1', '/test/%5c..%5cv1', '/test;/v1', '/test/v1;x=1', '/test/%c0%ae%c0%ae/v1',
    '/test/%00/v1', '/test/%zz', 'test/v1', 'http://example.invalid/v1/x', '*']) {
    const answer = await rawRequest(proxy.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)
    t.equal(answer.status, 400, target)
    t.match(answer.text, /PAVE_PROXY_REQUEST_(BAD_PATH|BAD)/, target)
  }
  t.equal(upstream.received.length, 0)
})

t.test('without a default account, an unknown prefix is 404; an unproxied method 405', async (t) => {
  const upstream = await startUpstream({ accounts: [TEST] })
  const proxy = await startProxy({ upstreamUrl: upstream.url, configFile: configFile(false), env: { PAVE_USERNAME: '', PAVE_API_KEY: '', PAVE_API_SECRET: '' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const missing = await request(`${proxy.url}/v1/sessions`)
  t.equal(missing.statusCode, 404)
  t.same(await missing.body.json(), { code: 'PAVE_PROXY_ROUTE_NOT_FOUND', message: 'No PAVE account is configured for this path prefix.' })
  const trace = await request(`${proxy.url}/test/v1/sessions`, { method: 'TRACE' })
  t.equal(trace.statusCode, 405)
  t.equal(trace.headers['x-pave-proxy-error'], 'PAVE_PROXY_METHOD_NOT_ALLOWED')
  await trace.body.dump()
  t.equal(upstream.received.length, 0)
})
