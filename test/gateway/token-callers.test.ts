/**
 * Token callers and their rules, over real sockets: who gets in, what reaches PAVE,
 * and the exact 401 and 403 answers.
 */
import t from 'tap'
import { INTAKE_TOKEN, REPORTING_TOKEN, startGateway } from './lib/gateway.js'

const CALLERS = [
  'callers:',
  '  - name: intake',
  '    tokenFile: $DIR/intake.tokens',
  '    accounts: [default]',
  '    allow:',
  '      - { methods: [POST], paths: [/v1/sessions] }',
  '      - { methods: [GET, HEAD], paths: [/v1/sessions/*, /v1/sessions/*/photos] }',
  '  - name: reporting',
  '    tokenFile: $DIR/reporting.tokens',
  '    allow:',
  '      - { methods: [GET], paths: ["/v1/**"] }',
  '  - name: nothing-allowed',
  '    tokenFile: $DIR/nothing.tokens'
]
const FILES = {
  'intake.tokens': `${INTAKE_TOKEN}\n`,
  'reporting.tokens': `\n  ${REPORTING_TOKEN}  \n\n`,
  'nothing.tokens': 'nothing-token-not-real-000000000\n'
}

t.test('no credential, or one that proves nothing: 401 with WWW-Authenticate, nothing upstream', async (t) => {
  const gw = await startGateway(t, { files: FILES, yaml: CALLERS })
  const attempts: Array<Record<string, string>> = [
    {},
    { authorization: 'Bearer wrong-token-not-real-0000000' },
    { authorization: `Basic ${INTAKE_TOKEN}` },
    { authorization: `Bearer ${INTAKE_TOKEN}x` },
    { authorization: `Bearer ${INTAKE_TOKEN.slice(0, -1)}` },
    { authorization: 'Bearer ' },
    { authorization: 'Bearer' },
    { authorization: 'Bearer a.b.c' }
  ]
  for (const headers of attempts) {
    const res = await gw.call('/v1/sessions/UCB-1', { headers })
    t.equal(res.status, 401, JSON.stringify(headers))
    t.equal(res.headers['www-authenticate'], 'Bearer')
    t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_CALLER_UNKNOWN')
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.body, '{"message":"No valid credential was presented.","code":"PAVE_PROXY_CALLER_UNKNOWN"}')
  }
  t.equal(gw.upstream.received.length, 0)
  t.notOk(gw.proxy.logs.join('\n').includes('wrong-token'), 'a presented token is never logged')
})

t.test('a known caller inside its rules is forwarded, signed, without its token', async (t) => {
  const gw = await startGateway(t, { files: FILES, yaml: CALLERS })
  const created = await gw.call('/v1/sessions', { method: 'POST', token: INTAKE_TOKEN, body: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(created.status, 200)
  const read = await gw.call('/v1/sessions/UCB-1/photos?page=2', { token: INTAKE_TOKEN })
  t.equal(read.status, 200)
  const reporting = await gw.call('/test/v1/sessions/UCB-1/results', { headers: { authorization: `bearer   ${REPORTING_TOKEN}` } })
  t.equal(reporting.status, 200, 'Bearer in any case, several spaces; every account when none named')
  t.equal(gw.upstream.received.length, 3)
  t.same(gw.upstream.received.map((r) => [r.method, r.url, r.signedBy]), [
    ['POST', '/v1/sessions', 'test-user'],
    ['GET', '/v1/sessions/UCB-1/photos?page=2', 'test-user'],
    ['GET', '/v1/sessions/UCB-1/results', 'gw-test-user']
  ])
  for (const received of gw.upstream.received) t.notOk('authorization' in received.headers, 'the caller\'s token never reaches PAVE')
  const logs = gw.proxy.logs.join('\n')
  t.notOk(logs.includes(INTAKE_TOKEN) || logs.includes(REPORTING_TOKEN), 'no token in any log line')
})

t.test('a known caller outside its accounts or rules: 403, nothing upstream', async (t) => {
  const gw = await startGateway(t, { files: FILES, yaml: CALLERS })
  const refused: Array<[string, string, string]> = [
    ['DELETE', '/v1/sessions/UCB-1', INTAKE_TOKEN], // method not allowed
    ['GET', '/v1/sessions', INTAKE_TOKEN], // path not in the rules (only POST)
    ['GET', '/v1/sessions/UCB-1/results', INTAKE_TOKEN], // * is one segment
    ['GET', '/v1/sessions/UCB-1/photos/x', INTAKE_TOKEN],
    ['PUT', '/v1/callbacks/SESSION:COMPLETE', INTAKE_TOKEN],
    ['GET', '/test/v1/sessions/UCB-1', INTAKE_TOKEN], // another account
    ['GET', '/V1/sessions/UCB-1', INTAKE_TOKEN], // case
    ['GET', '/v1/sessions/UCB-1/', INTAKE_TOKEN], // trailing slash: an empty segment is not a segment
    ['POST', '/v1/sessions', REPORTING_TOKEN],
    ['GET', '/v2/capture/sessions/x', REPORTING_TOKEN], // ** under /v1 only
    ['GET', '/v1/sessions', 'nothing-token-not-real-000000000'], // no rule, nothing
    ['GET', '/metrics-not', INTAKE_TOKEN],
    ['GET', '/test', REPORTING_TOKEN], // the account's root: "/" to PAVE
    ['GET', '/test?x=/v1/sessions', REPORTING_TOKEN]
  ]
  for (const [method, path, token] of refused) {
    const res = await gw.call(path, { method: method as 'GET', token })
    t.equal(res.status, 403, `${method} ${path}`)
    t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_CALLER_FORBIDDEN')
    t.equal(res.headers['www-authenticate'], undefined)
    t.equal(res.body, '{"message":"This caller is not allowed to make this request.","code":"PAVE_PROXY_CALLER_FORBIDDEN"}')
  }
  t.equal(gw.upstream.received.length, 0)
  const reportingRoot = await gw.call('/v1', { token: REPORTING_TOKEN })
  t.equal(reportingRoot.status, 200, '/v1/** covers /v1 itself')
})

t.test('probes stay open; /metrics is open unless metrics.callers names who may read it', async (t) => {
  const open = await startGateway(t, { files: FILES, yaml: CALLERS })
  for (const path of ['/healthz', '/readyz', '/metrics']) t.equal((await open.call(path)).status, 200, path)
  const guarded = await startGateway(t, { files: FILES, yaml: [...CALLERS, 'metrics:', '  callers: [reporting]'] })
  t.equal((await guarded.call('/healthz')).status, 200)
  t.equal((await guarded.call('/metrics')).status, 401)
  t.equal((await guarded.call('/metrics', { token: INTAKE_TOKEN })).status, 403)
  const metrics = await guarded.call('/metrics', { token: REPORTING_TOKEN })
  t.equal(metrics.status, 200)
  t.match(metrics.body, /pave_proxy_requests_total\{account="",method="GET",status_class="4xx",caller="unknown"\} 1/)
  t.match(metrics.body, /pave_proxy_requests_total\{account="",method="GET",status_class="4xx",caller="intake"\} 1/)
})

t.test('identity headers a caller sends are dropped, never forwarded or trusted', async (t) => {
  const gw = await startGateway(t, { files: FILES, yaml: CALLERS })
  const res = await gw.call('/v1/sessions/UCB-1', {
    token: INTAKE_TOKEN,
    headers: { 'x-pave-proxy-caller': 'reporting', 'x_pave_proxy_caller': 'reporting', 'x-forwarded-user': 'admin', 'x-forwarded-client-cert': 'By=spiffe://x', 'x-custom': 'kept' }
  })
  t.equal(res.status, 200)
  const headers = gw.upstream.received[0]!.headers
  for (const name of ['x-pave-proxy-caller', 'x_pave_proxy_caller', 'x-forwarded-user', 'x-forwarded-client-cert', 'authorization']) t.notOk(name in headers, name)
  t.equal(headers['x-custom'], 'kept')
  const spoofed = await gw.call('/v1/sessions/UCB-1', { headers: { 'x-pave-proxy-caller': 'intake' } })
  t.equal(spoofed.status, 401, 'a caller header proves nothing')
})
