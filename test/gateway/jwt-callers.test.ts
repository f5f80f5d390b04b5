/**
 * JWT callers checked against a JWKS file, over real sockets: RS256 and ES256 tokens
 * prove their caller; expired, not yet valid, issued in the future, without exp, for
 * another audience, issuer or subject, unsecured (alg none) or HS256 signed with the
 * public key prove nothing; an unknown kid re-reads the JWKS (at most once per
 * interval), so a rotated JWKS is picked up.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { AUDIENCE, ISSUER, SUBJECT, confusedToken, jwks, signingKey, token, unsecuredToken } from '../fixtures/jwt.js'
import { linesOf, settle, startGateway } from './lib/gateway.js'

const rsa = await signingKey('RS256', 'rsa-1')
const ec = await signingKey('ES256', 'ec-1')
const rotated = await signingKey('RS256', 'rsa-2')
const later = await signingKey('EdDSA', 'ed-3')

const CALLERS = [
  'callers:',
  '  - name: reporting',
  `    jwt: { issuer: "${ISSUER}", audience: ${AUDIENCE}, subject: "${SUBJECT}", jwksFile: $DIR/jwks.json }`,
  '    allow: [{ methods: [GET, HEAD], paths: ["/v1/sessions/**"] }]',
  '  - name: fenced',
  `    jwt: { issuer: "${ISSUER}", audience: ${AUDIENCE}, subject: "system:serviceaccount:x:fenced", jwksFile: $DIR/jwks.json }`,
  '    from: [10.0.0.0/8]',
  '    allow: [{ methods: [GET], paths: ["/**"] }]'
]

t.test('valid RS256 and ES256 tokens prove the caller, who stays within its rules; the JWT never reaches PAVE or a log', async (t) => {
  const gw = await startGateway(t, { files: { 'jwks.json': jwks(rsa, ec) }, yaml: CALLERS })
  const tokens = [await token(rsa), await token(ec), await token(rsa, { exp: Math.floor(Date.now() / 1000) - 10 })]
  for (const jwt of tokens) {
    t.equal((await gw.call('/v1/sessions/UCB-1', { token: jwt })).status, 200)
    t.equal((await gw.call('/v1/sessions/UCB-1', { token: jwt })).status, 200, 'again (cached)')
  }
  t.equal((await gw.call('/v1/sessions/UCB-1', { method: 'DELETE', token: tokens[0] })).status, 403, 'read-only')
  t.equal(gw.upstream.received.length, 6)
  for (const received of gw.upstream.received) t.notOk('authorization' in received.headers)
  await settle()
  const audit = linesOf(gw.proxy).filter((line) => line.audit === true)
  t.same(audit.map((line) => [line.caller, line.proof, line.status]), [['reporting', 'jwt', 403]])
  const logs = gw.proxy.logs.join('\n')
  for (const jwt of tokens) t.notOk(logs.includes(jwt.split('.')[2] as string), 'no JWT in any log line')
})

t.test('tokens that prove nothing: 401, and nothing upstream', async (t) => {
  const gw = await startGateway(t, { files: { 'jwks.json': jwks(rsa, ec) }, yaml: CALLERS })
  const now = Math.floor(Date.now() / 1000)
  const refused: Array<[string, string]> = [
    ['expired', await token(rsa, { exp: now - 120, iat: now - 3720, nbf: now - 3720 })],
    ['not yet valid', await token(ec, { nbf: now + 300 })],
    ['issued in the future', await token(rsa, { iat: now + 300 })],
    ['without exp', await token(rsa, { exp: undefined })],
    ['wrong audience', await token(rsa, { aud: ['vault'] })],
    ['wrong issuer', await token(rsa, { iss: 'https://evil.example' })],
    ['without issuer', await token(rsa, { iss: undefined })],
    ['wrong subject', await token(rsa, { sub: 'system:serviceaccount:reporting:other' })],
    ['alg none', unsecuredToken(rsa.kid)],
    ['HS256 signed with the public key', confusedToken(rsa)],
    ['signed by a key not in the JWKS', await token(rotated, {}, { kid: rsa.kid })],
    ['a kid of another type', await token(ec, {}, { kid: rsa.kid })],
    ['not a JWT', 'eyJhbGciOi.not-json.x'],
    ['outside its from blocks', await token(rsa, { sub: 'system:serviceaccount:x:fenced' })]
  ]
  for (const [name, jwt] of refused) {
    const res = await gw.call('/v1/sessions/UCB-1', { token: jwt })
    t.equal(res.status, 401, name)
    t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_CALLER_UNKNOWN', name)
  }
  t.equal(gw.upstream.received.length, 0)
})

t.test('an unknown kid re-reads the JWKS, at most once per interval: a rotated JWKS is picked up', async (t) => {
  const gw = await startGateway(t, { files: { 'jwks.json': jwks(rsa) }, yaml: CALLERS, jwksRefreshIntervalMs: 400 })
  const next = await token(rotated)
  t.equal((await gw.call('/v1/sessions/A', { token: next })).status, 401, 'not in the JWKS yet (re-read, still absent)')
  writeFileSync(gw.file('jwks.json'), jwks(rsa, rotated))
  t.equal((await gw.call('/v1/sessions/A', { token: next })).status, 401, 'within the interval: not re-read')
  await new Promise((resolve) => setTimeout(resolve, 450))
  t.equal((await gw.call('/v1/sessions/A', { token: next })).status, 200, 'after it: re-read, and the new key verifies')
  t.equal((await gw.call('/v1/sessions/A', { token: await token(rsa) })).status, 200, 'the old key too')
  writeFileSync(gw.file('jwks.json'), '{ not json')
  await new Promise((resolve) => setTimeout(resolve, 450))
  t.equal((await gw.call('/v1/sessions/A', { token: await token(later) })).status, 401, 'a broken JWKS file: the kid stays unknown')
  t.equal((await gw.call('/v1/sessions/A', { token: await token(rotated, { exp: Math.floor(Date.now() / 1000) + 60 }) })).status, 200, 'the last good keys stay')
  t.match(gw.proxy.logs.join('\n'), /"msg":"cannot read a JWKS; the last good keys stay"/)
})
