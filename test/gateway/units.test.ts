/**
 * The gateway's small pieces on their own: `from` addresses, the caller label, a JWKS
 * source's refresh rules, the verified-token cache, and configuration corner cases.
 */
import t from 'tap'
import { BlockList } from 'node:net'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyRequest } from 'fastify'
import { callerLabel, comesFrom } from '../../src/inbound/callers.js'
import { JwksKeys, type JwksOptions } from '../../src/inbound/jwks.js'
import { JwtProofs } from '../../src/inbound/jwt-proof.js'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { AUDIENCE, ISSUER, SUBJECT, signingKey, token } from '../fixtures/jwt.js'

t.test('from: IPv4, IPv4-mapped IPv6, IPv6, no address', async (t) => {
  const from = new BlockList()
  from.addSubnet('10.0.0.0', 8, 'ipv4')
  from.addSubnet('fd00::', 8, 'ipv6')
  t.ok(comesFrom(from, '10.1.2.3'))
  t.ok(comesFrom(from, '::ffff:10.1.2.3'))
  t.ok(comesFrom(from, 'fd00::1'))
  t.notOk(comesFrom(from, '192.168.0.1'))
  t.notOk(comesFrom(from, '::1'))
  t.notOk(comesFrom(from, undefined), 'a socket already gone proves nothing')
})

t.test('the caller label', async (t) => {
  const request = (caller: unknown, callersConfigured: boolean): FastifyRequest => ({ caller, server: { callersConfigured } }) as unknown as FastifyRequest
  t.equal(callerLabel(request({ name: 'intake', proof: 'token' }, true)), 'intake')
  t.equal(callerLabel(request(undefined, true)), 'unknown')
  t.equal(callerLabel(request(undefined, false)), 'anonymous')
})

const key = await signingKey('ES256', 'k1')
const twin = await signingKey('ES256', 'k1')
const verifyOptions = { issuer: ISSUER, audience: AUDIENCE, subject: SUBJECT }

function source (load: () => Promise<unknown>, options: Partial<JwksOptions> = {}): { keys: JwksKeys, failures: string[] } {
  const failures: string[] = []
  const keys = new JwksKeys(load, 'test source', {
    readFile: async () => '',
    fetchUrl: async () => ({}),
    onRefreshFailed: (_source, reason) => failures.push(reason),
    ...options
  })
  return { keys, failures }
}

t.test('a JWKS source: one read at a time, failures reported whatever was thrown, stale keys re-read in the background', async (t) => {
  let reads = 0
  const { keys, failures } = source(async () => { reads++; await new Promise((resolve) => setTimeout(resolve, 20)); return { keys: [key.jwk] } }, { maxAgeMs: 50 })
  await Promise.all([keys.refresh(), keys.refresh(), keys.refresh()])
  t.equal(reads, 1, 'concurrent refreshes share one read')
  await keys.refresh()
  t.equal(reads, 1, 'and the interval holds')
  t.ok(keys.loaded)
  const proofs = new JwtProofs<{ name: string }>()
  proofs.add({ ...verifyOptions, jwksUrl: 'https://x.example' }, keys, { name: 'a' })
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.same(await proofs.verify(await token(key), 'h1'), { name: 'a' }, 'stale keys still verify…')
  t.equal(failures.length, 0)

  const thrower = source(async () => { throw 'not an Error' }) // eslint-disable-line @typescript-eslint/only-throw-error
  await thrower.keys.refresh()
  t.same(thrower.failures, ['not an Error'])
  t.notOk(thrower.keys.loaded)
})

t.test('two keys under one kid: the token proves nothing (no guessing)', async (t) => {
  const { keys } = source(async () => ({ keys: [key.jwk, twin.jwk] }))
  await keys.refresh()
  const proofs = new JwtProofs<{ name: string }>()
  proofs.add({ ...verifyOptions, jwksFile: '/x' }, keys, { name: 'a' })
  t.equal(await proofs.verify(await token(key), 'h'), undefined)
})

t.test('a verified token is cached by its hash until exp; an expired entry is checked again', async (t) => {
  let now = Date.now()
  const { keys } = source(async () => ({ keys: [key.jwk] }), { now: () => now })
  await keys.refresh()
  const proofs = new JwtProofs<{ name: string }>(() => now)
  proofs.add({ ...verifyOptions, jwksFile: '/x' }, keys, { name: 'a' })
  const jwt = await token(key, { exp: Math.floor(now / 1000) + 60 })
  const first = proofs.verify(jwt, 'hash-1')
  t.type(first, Promise, 'the first time: a signature check')
  t.same(await first, { name: 'a' })
  t.same(proofs.verify(jwt, 'hash-1'), { name: 'a' }, 'then synchronous, from the cache')
  now += 61_000
  const again = proofs.verify(jwt, 'hash-1')
  t.type(again, Promise, 'past exp, the cache no longer answers')
  t.same(await again, { name: 'a' }, 'and the check itself has its leeway')
  now += 60_000
  t.equal(await proofs.verify(jwt, 'hash-1'), undefined)
  t.equal(proofs.verify('not-a-jwt', 'hash-2'), undefined, 'not a JWT: no check at all')
})

t.test('configuration corner cases: non-string paths and jwksFile, a read error without a code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-callers-units-'))
  const file = join(dir, 'pave-proxy.yaml')
  writeFileSync(file, [
    'callers:',
    '  - { name: a, jwt: { issuer: i, audience: a, subject: s, jwksFile: 7 }, allow: [{ methods: [GET], paths: [7] }] }',
    '  - { name: b, tokenFile: t.tokens }'
  ].join('\n'))
  try {
    loadConfig({
      env: { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's', PAVE_PROXY_CONFIG: file },
      cwd: dir,
      readFile: (path) => { if (path.endsWith('.tokens')) throw new Error('odd failure'); return readFileSync(path, 'utf8') }
    })
    t.fail('expected a ConfigError')
  } catch (error) {
    t.type(error, ConfigError)
    t.same([...(error as ConfigError).problems].sort(), [
      `caller "b": tokenFile: cannot read ${join(dir, 't.tokens')} (error)`,
      'callers[0].allow[0].paths[0] must be string',
      'callers[0].jwt.jwksFile must be string'
    ].sort())
  }
})

t.test('the policy stage: a path no account serves is refused', async (t) => {
  const { createPolicyStage } = await import('../../src/inbound/policy.js')
  const { kPolicy } = await import('../../src/inbound/callers.js')
  const { compileRules } = await import('../../src/inbound/rules.js')
  const caller = { name: 'a', proof: 'token', [kPolicy]: { name: 'a', accounts: undefined, rules: compileRules([{ methods: ['*'], paths: ['/**'] }]), from: undefined } }
  const stage = createPolicyStage({ current: { byBearer: () => undefined, certificates: [], metricsOpen: true, metricsCallers: new Set(), prefixLength: new Map() } })
  const verdict = stage.check({ caller, routeOptions: { url: undefined, config: {} }, raw: { url: '/nowhere' }, method: 'GET' } as unknown as FastifyRequest, undefined as never)
  t.same(verdict, { code: 'PAVE_PROXY_CALLER_FORBIDDEN' })
})

t.test('an audit line without an address or account, for a caller who left', async (t) => {
  const { createAuditTrail } = await import('../../src/observe/audit.js')
  const lines: string[] = []
  const trail = await createAuditTrail({ stdout: { write: (line: string) => lines.push(line) }, logger: { error: () => {} } })
  trail.write({ reqId: 'r1', caller: 'unknown', proof: undefined, remoteAddress: undefined, account: undefined, method: 'DELETE', path: '/v1/x', status: 401, code: 'PAVE_PROXY_CALLER_UNKNOWN', aborted: true })
  trail.reopen()
  trail.close()
  const line = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>
  t.same([line.audit, line.remoteAddress, line.account, line.aborted, line.code], [true, null, null, true, 'PAVE_PROXY_CALLER_UNKNOWN'])
})
