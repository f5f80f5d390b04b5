/**
 * Client-certificate callers, over real TLS with the fixture CA: a good certificate
 * proves its caller by SAN URI, SAN DNS name or subject; an expired one, one from
 * another CA, one that matches no caller, or none at all proves nothing (401).
 */
import t from 'tap'
import { makeClientCa } from '../fixtures/client-ca.js'
import { tlsAgent } from '../helpers/tls-proxy.js'
import { INTAKE_TOKEN, linesOf, settle, startGateway } from './lib/gateway.js'

const pki = makeClientCa()
t.teardown(pki.cleanup)

function callers (match: string): string[] {
  return [
    'callers:',
    '  - name: ops-console',
    `    clientCert: ${match}`,
    '    allow: [{ methods: ["*"], paths: ["/v1/callbacks/**"] }]',
    '  - name: reporting',
    '    clientCert: { subject: "CN=reporting, OU=Ops, O=Acme, C=DE" }',
    '    allow: [{ methods: [GET], paths: ["/v1/**"] }]',
    '  - name: intake',
    '    tokenFile: $DIR/intake.tokens',
    '    allow: [{ methods: [POST], paths: [/v1/sessions] }]'
  ]
}

for (const [kind, match] of [
  ['SAN URI', `{ uri: "${pki.goodIdentity.uri}" }`],
  ['SAN DNS name', `{ dns: "${pki.goodIdentity.dns.toUpperCase()}" }`],
  ['subject', `{ subject: "${pki.goodIdentity.subject}" }`]
] as const) {
  t.test(`a good certificate proves its caller by ${kind}; nothing of it reaches PAVE`, async (t) => {
    const gw = await startGateway(t, { files: { 'intake.tokens': `${INTAKE_TOKEN}\n` }, yaml: callers(match), tls: { pki, clientAuth: 'request' } })
    const agent = tlsAgent(pki, pki.clients.good)
    t.teardown(async () => { await agent.close() })
    const res = await gw.call('/v1/callbacks/SESSION:COMPLETE', { method: 'PUT', dispatcher: agent, body: '{}' })
    t.equal(res.status, 200)
    t.equal((await gw.call('/v1/sessions', { dispatcher: agent })).status, 403, 'outside its rules')
    t.equal(gw.upstream.received.length, 1)
    const headers = JSON.stringify(gw.upstream.received[0]?.headers)
    t.notMatch(headers, /spiffe|console|BEGIN CERTIFICATE/, 'no certificate detail upstream')
    await settle()
    const audit = linesOf(gw.proxy).filter((line) => line.audit === true)
    t.same(audit.map((line) => [line.caller, line.proof, line.status]), [['ops-console', 'clientCert', 200], ['ops-console', 'clientCert', 403]])
    t.notOk(gw.proxy.logs.join('\n').includes('BEGIN'), 'no certificate in any line')
  })
}

t.test('expired, another CA, non-matching, none: 401; a bearer token decides when one is sent', async (t) => {
  const gw = await startGateway(t, { files: { 'intake.tokens': `${INTAKE_TOKEN}\n` }, yaml: callers(`{ uri: "${pki.goodIdentity.uri}" }`), tls: { pki, clientAuth: 'request' } })
  for (const [name, client] of [['expired', pki.clients.expired], ['another CA', pki.clients.otherCa], ['non-matching', pki.clients.nonMatching], ['none', undefined]] as const) {
    const agent = tlsAgent(pki, client)
    const res = await gw.call('/v1/callbacks/SESSION:COMPLETE', { method: 'PUT', dispatcher: agent, body: '{}' })
    await agent.close()
    t.equal(res.status, 401, name)
    t.equal(res.headers['www-authenticate'], 'Bearer')
  }
  const reporting = tlsAgent(pki, pki.clients.multiRdn)
  t.equal((await gw.call('/v1/sessions/X', { dispatcher: reporting })).status, 200, 'a multi-RDN subject, written with spaces in the configuration')
  await reporting.close()
  const good = tlsAgent(pki, pki.clients.good)
  t.equal((await gw.call('/v1/sessions', { method: 'POST', dispatcher: good, token: INTAKE_TOKEN, body: '{}' })).status, 200, 'the token proves intake')
  t.equal((await gw.call('/v1/callbacks/X', { method: 'PUT', dispatcher: good, token: 'wrong-token-not-real-000000000', body: '{}' })).status, 401, 'a wrong token is not rescued by a good certificate')
  await good.close()
  t.equal(gw.upstream.received.length, 2)
})

t.test('clientCert without a client CA on the listener is a configuration problem', async (t) => {
  const { ConfigError } = await import('../../src/config/load.js')
  await t.rejects(startGateway(t, { yaml: callers('{ dns: a.b }') }), ConfigError)
})
