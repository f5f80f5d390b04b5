/**
 * A reload swaps callers, tokens and rules live, with the accounts, all or nothing;
 * switching the gateway on or off needs a restart.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { testConfig } from '../helpers/proxy.js'
import { INTAKE_TOKEN, REPORTING_TOKEN, accountsYaml, startGateway } from './lib/gateway.js'

t.test('callers, tokens and rules change live; a gateway is not switched off by a reload', async (t) => {
  const gw = await startGateway(t, {
    files: { 'intake.tokens': `${INTAKE_TOKEN}\n` },
    yaml: ['callers:', '  - { name: intake, tokenFile: $DIR/intake.tokens, allow: [{ methods: [GET], paths: [/v1/sessions] }] }']
  })
  t.equal((await gw.call('/v1/sessions', { token: INTAKE_TOKEN })).status, 200)
  t.equal((await gw.call('/v1/callbacks', { token: INTAKE_TOKEN })).status, 403)
  const reconfigure = (yaml: string[]): ReturnType<typeof testConfig> => {
    writeFileSync(gw.file('pave-proxy.yaml'), [...accountsYaml(), ...yaml].join('\n').replaceAll('$DIR', gw.dir) + '\n')
    return testConfig({ upstreamUrl: gw.upstream.url, configFile: gw.file('pave-proxy.yaml') })
  }

  writeFileSync(gw.file('reporting.tokens'), `${REPORTING_TOKEN}\n`)
  t.equal(gw.proxy.app.reload(reconfigure([
    'callers:',
    '  - { name: intake, tokenFile: $DIR/intake.tokens, allow: [{ methods: [GET], paths: [/v1/callbacks] }] }',
    '  - { name: reporting, tokenFile: $DIR/reporting.tokens, allow: [{ methods: [GET], paths: ["/**"] }] }'
  ])), true)
  t.equal((await gw.call('/v1/sessions', { token: INTAKE_TOKEN })).status, 403, 'the old rule is gone')
  t.equal((await gw.call('/v1/callbacks', { token: INTAKE_TOKEN })).status, 200, 'the new rule applies')
  t.equal((await gw.call('/v1/sessions', { token: REPORTING_TOKEN })).status, 200, 'a new caller')

  t.equal(gw.proxy.app.reload(reconfigure([
    'callers:',
    '  - { name: reporting, tokenFile: $DIR/reporting.tokens, allow: [{ methods: [GET], paths: ["/**"] }] }'
  ])), true)
  t.equal((await gw.call('/v1/callbacks', { token: INTAKE_TOKEN })).status, 401, 'a removed caller proves nothing')

  t.equal(gw.proxy.app.reload(reconfigure([])), false, 'removing callers altogether would open the gateway: refused')
  t.equal((await gw.call('/v1/sessions')).status, 401, 'the running callers stay')
  t.match(gw.proxy.logs.join('\n'), /callers were added or removed altogether \(the gateway switched on or off\): restart to apply/)
  t.equal((await gw.call('/v1/sessions', { token: REPORTING_TOKEN })).status, 200)
  t.equal(gw.proxy.app.reload(reconfigure([
    'callers:',
    '  - { name: reporting, tokenFile: $DIR/reporting.tokens, allow: [{ methods: [GET], paths: ["/**"] }] }',
    'audit: { file: $DIR/audit.log }'
  ])), true)
  t.match(gw.proxy.logs.join('\n'), /"restartNeeded":\["audit"\]/, 'the audit file changes at the next start')
})

t.test('a sidecar does not become a gateway by a reload', async (t) => {
  const { startProxy } = await import('../helpers/proxy.js')
  const { startUpstream } = await import('../helpers/upstream.js')
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const gw = await startGateway(t, { files: { 'intake.tokens': `${INTAKE_TOKEN}\n` }, yaml: ['callers:', '  - { name: intake, tokenFile: $DIR/intake.tokens }'] })
  const next = testConfig({ upstreamUrl: upstream.url, configFile: gw.file('pave-proxy.yaml') })
  // The gateway's file has a second account: keep the sidecar's accounts so only the callers differ.
  t.equal(proxy.app.reload({ ...next, accounts: proxy.config.accounts }), false)
  t.equal(proxy.app.callersConfigured, false)
})
