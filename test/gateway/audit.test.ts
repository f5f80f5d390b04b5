/**
 * The audit trail: one complete line for every refusal and every state-changing call,
 * nothing for reads; on standard output marked "audit": true, or appended to
 * audit.file and reopened after rotation; never a token. And the caller on every
 * access line.
 */
import t from 'tap'
import { readFileSync, renameSync } from 'node:fs'
import { buildApp } from '../../src/app.js'
import { startProxy, testConfig } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { INTAKE_TOKEN, linesOf, settle, startGateway } from './lib/gateway.js'

const CALLERS = [
  'callers:',
  '  - name: intake',
  '    tokenFile: $DIR/intake.tokens',
  '    allow: [{ methods: [GET, POST, DELETE], paths: ["/v1/**"] }]'
]
const FILES = { 'intake.tokens': `${INTAKE_TOKEN}\n` }
const FIELDS = ['time', 'reqId', 'caller', 'proof', 'remoteAddress', 'account', 'method', 'path', 'status']

async function waitFor (read: () => string, pattern: RegExp): Promise<string> {
  const started = Date.now()
  for (;;) {
    let text = ''
    try {
      text = read()
    } catch {} // not there yet: the file is reopened asynchronously
    if (pattern.test(text)) return text
    if (Date.now() - started > 5_000) throw new Error(`timed out waiting for ${String(pattern)} in ${text}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('on standard output: refusals and state-changing calls, complete, without secrets', async (t) => {
  const gw = await startGateway(t, { files: FILES, yaml: CALLERS })
  gw.upstream.server.removeAllListeners('request')
  gw.upstream.server.on('request', (req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.url === '/v1/sessions/PAVE-REFUSES') res.writeHead(403, { 'content-type': 'application/json' }).end('{"message":"no"}')
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await gw.call('/v1/sessions/A?secret-query=1', { token: INTAKE_TOKEN }) // a read: no audit line
  await gw.call('/v1/sessions?x=1', { method: 'POST', token: INTAKE_TOKEN, body: '{}', headers: { 'x-request-id': 'created-1' } })
  await gw.call('/v1/sessions/B', { method: 'DELETE', token: INTAKE_TOKEN })
  await gw.call('/v1/sessions/C', { method: 'DELETE', headers: { authorization: 'Bearer not-a-token-not-real-000000' } })
  await gw.call('/v2/capture/sessions/D/resend', { method: 'PUT', token: INTAKE_TOKEN })
  await gw.call('/v1/sessions/PAVE-REFUSES', { token: INTAKE_TOKEN })
  await gw.call('/nowhere/x', { method: 'PATCH', token: INTAKE_TOKEN })
  await settle()
  const audit = linesOf(gw.proxy).filter((line) => line.audit === true)
  t.equal(audit.length, 6, 'one line each, none for the read')
  for (const line of audit) {
    for (const field of FIELDS) t.ok(field in line, `${String(line.reqId)} has ${field}`)
    t.type(line.time, 'number')
    t.equal(line.msg, 'audit')
    t.equal(line.remoteAddress, '127.0.0.1')
  }
  const pick = (line: Record<string, unknown>): unknown[] => [line.caller, line.proof, line.account, line.method, line.path, line.status, line.code]
  t.same(audit.map(pick), [
    ['intake', 'token', 'default', 'POST', '/v1/sessions', 200, undefined],
    ['intake', 'token', 'default', 'DELETE', '/v1/sessions/B', 200, undefined],
    ['unknown', null, 'default', 'DELETE', '/v1/sessions/C', 401, 'PAVE_PROXY_CALLER_UNKNOWN'],
    ['intake', 'token', 'default', 'PUT', '/v2/capture/sessions/D/resend', 403, 'PAVE_PROXY_CALLER_FORBIDDEN'],
    ['intake', 'token', 'default', 'GET', '/v1/sessions/PAVE-REFUSES', 403, undefined],
    ['intake', 'token', 'default', 'PATCH', '/nowhere/x', 403, 'PAVE_PROXY_CALLER_FORBIDDEN']
  ])
  t.equal(audit[0]?.reqId, 'created-1', 'the x-request-id the caller got')
  const access = linesOf(gw.proxy).filter((line) => line.msg === 'request completed')
  t.same(access.map((line) => line.caller), ['intake', 'intake', 'intake', 'unknown', 'intake', 'intake', 'intake'], 'every access line names its caller')
  const text = gw.proxy.logs.join('\n')
  t.notOk(text.includes(INTAKE_TOKEN) || text.includes('not-a-token-not-real'), 'no token in any line')
})

t.test('to audit.file: appended, reopened after rotation, nothing on standard output', async (t) => {
  const gw = await startGateway(t, { files: FILES, yaml: [...CALLERS, 'audit: { file: $DIR/audit.log }'] })
  await gw.call('/v1/sessions', { method: 'POST', token: INTAKE_TOKEN, body: '{}' })
  const first = await waitFor(() => readFileSync(gw.file('audit.log'), 'utf8'), /"status":200/)
  const line = JSON.parse(first.trim()) as Record<string, unknown>
  t.same(Object.keys(line), FIELDS)
  t.equal(line.proof, 'token')
  renameSync(gw.file('audit.log'), gw.file('audit.log.1')) // logrotate moves it…
  gw.proxy.app.reopenAudit() // …then SIGHUP
  await gw.call('/v1/sessions/Z', { method: 'DELETE' })
  const second = await waitFor(() => readFileSync(gw.file('audit.log'), 'utf8'), /"status":401/)
  t.equal(second.trim().split('\n').length, 1, 'the new file holds the new line only')
  t.match(second, /"code":"PAVE_PROXY_CALLER_UNKNOWN"/)
  t.equal(readFileSync(gw.file('audit.log.1'), 'utf8').trim().split('\n').length, 1)
  t.equal(linesOf(gw.proxy).filter((l) => l.audit === true).length, 0)
})

t.test('an audit file that cannot be opened stops the start; a sidecar keeps no audit trail', async (t) => {
  const upstream = await startUpstream()
  t.teardown(async () => { await upstream.close() })
  const config = testConfig({ upstreamUrl: upstream.url })
  await t.rejects(buildApp({ ...config, audit: { file: '/nonexistent-dir/audit.log' } }))
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close() })
  await (await fetch(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{}' })).text()
  await settle()
  const lines = linesOf(proxy)
  t.equal(lines.filter((l) => l.audit === true).length, 0)
  t.equal(lines.find((l) => l.msg === 'request completed')?.caller, 'anonymous')
  proxy.app.reopenAudit() // nothing to reopen
})

t.test('a sidecar with audit.file keeps the trail too', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-audit-'))
  writeFileSync(join(dir, 'pave-proxy.yaml'), `audit: { file: ${join(dir, 'audit.log')} }\n`)
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, configFile: join(dir, 'pave-proxy.yaml') })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  await (await fetch(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{}' })).text()
  const line = await waitFor(() => readFileSync(join(dir, 'audit.log'), 'utf8'), /"status":200/)
  t.match(line, /"caller":"anonymous","proof":null/)
})
