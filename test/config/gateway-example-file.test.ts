import t from 'tap'
import { readFileSync } from 'node:fs'
import { makeClientCa } from '../fixtures/client-ca.js'
import { loadConfig } from '../../src/config/load.js'
import { compileRules } from '../../src/inbound/rules.js'

const examplePath = new URL('../../config/pave-proxy.gateway.example.yaml', import.meta.url)
const pki = makeClientCa()
t.teardown(pki.cleanup)

t.test('the gateway example file loads, and its rules say what its comments say', async (t) => {
  const files: Record<string, string> = {
    '/etc/pave-proxy/tls/tls.crt': pki.server.cert,
    '/etc/pave-proxy/tls/tls.key': pki.server.key,
    '/etc/pave-proxy/tls/client-ca.crt': pki.caPem,
    '/etc/pave-proxy/cluster-jwks.json': JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid: 'k', x: 'MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4', y: '4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM' }] }),
    '/run/secrets/pave-proxy-callers/intake.tokens': 'example-token-not-real-0123456789\n',
    '/run/secrets/pave-api-secret': 'example-secret-not-real\n'
  }
  const config = loadConfig({ env: { PAVE_PROXY_CONFIG: examplePath.pathname }, readFile: (path) => files[path] ?? readFileSync(path, 'utf8') })
  t.same(config.callers?.map((c) => c.name), ['intake', 'reporting', 'ops-console'])
  t.equal(config.tls?.clientAuth, 'request')
  t.same(config.metrics?.callers, ['ops-console'])
  t.equal(config.audit?.file, '/var/log/pave-proxy/audit.log')
  const rules = Object.fromEntries((config.callers ?? []).map((c) => [c.name, compileRules(c.allow ?? [])]))
  const may = (caller: string, method: string, path: string): boolean => (rules[caller] as ReturnType<typeof compileRules>)(method, path)
  t.ok(may('intake', 'POST', '/v1/sessions'))
  t.ok(may('intake', 'GET', '/v1/sessions/UCB-1/photos'))
  t.notOk(may('intake', 'DELETE', '/v1/sessions/UCB-1'))
  t.ok(may('reporting', 'GET', '/v1/sessions/UCB-1/results'))
  t.notOk(may('reporting', 'POST', '/v1/sessions'))
  for (const caller of ['intake', 'reporting']) t.notOk(may(caller, 'PUT', '/v1/callbacks/SESSION:COMPLETE'), `${caller} cannot re-point the webhooks`)
  t.ok(may('ops-console', 'PUT', '/v1/callbacks/SESSION:COMPLETE'), 'only the console can')
  t.ok(may('ops-console', 'GET', '/v1/callbacks'))
})
