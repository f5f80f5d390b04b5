import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { parseCidr } from '../../src/config/cidr.js'

t.test('parseCidr', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' })
  t.same(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' })
  t.same(parseCidr('127.0.0.1'), { address: '127.0.0.1', prefix: 32, family: 'ipv4' })
  for (const bad of ['10.0.0.0/33', 'fe80::/129', 'localhost', '10.0.0.0/8/8', '10.0.0.0/x', '']) t.equal(parseCidr(bad), undefined, bad)
})

t.test('an allowlist refuses callers outside it, with a code; probes stay open', async (t) => {
  const upstream = await startUpstream()
  const outside = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_ALLOW: '10.0.0.0/8, 192.168.0.0/16' } })
  const inside = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_ALLOW: '10.0.0.0/8,127.0.0.1/32' } })
  t.teardown(async () => { await outside.close(); await inside.close(); await upstream.close() })
  const refused = await request(`${outside.url}/v1/sessions`)
  t.equal(refused.statusCode, 403)
  t.same(await refused.body.json(), { code: 'PAVE_PROXY_REQUEST_FORBIDDEN', message: 'This caller is not allowed to use the proxy.' })
  t.equal((await request(`${outside.url}/healthz`)).statusCode, 200)
  t.equal((await request(`${outside.url}/readyz`)).statusCode, 200)
  const metricsRefused = await request(`${outside.url}/metrics`)
  t.equal(metricsRefused.statusCode, 403, '/metrics is guarded too')
  await metricsRefused.body.dump()
  const allowed = await request(`${inside.url}/v1/sessions`)
  t.equal(allowed.statusCode, 200)
  await allowed.body.dump()
  t.equal(upstream.received.length, 1)
})

t.test('a shared token is required, compared, and never forwarded or logged', async (t) => {
  const token = 'shared-token-not-real-0123456789'
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-token-'))
  writeFileSync(join(dir, 'token'), token + '\n')
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_PROXY_TOKEN_FILE: join(dir, 'token') } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${token}`, `Bearer ${token}x`]) {
    const res = await request(`${proxy.url}/v1/sessions`, { headers: authorization !== undefined ? { authorization } : {} })
    t.equal(res.statusCode, 403, String(authorization))
    t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_REQUEST_FORBIDDEN')
    await res.body.dump()
  }
  const ok = await request(`${proxy.url}/v1/sessions`, { headers: { authorization: `bearer ${token}` } })
  t.equal(ok.statusCode, 200)
  await ok.body.dump()
  t.equal(upstream.received.length, 1)
  t.notOk('authorization' in upstream.received[0]!.headers, 'the token is removed before forwarding')
  t.notOk(proxy.logs.join('\n').includes(token), 'never logged')
  t.notOk(proxy.logs.join('\n').includes('wrong-token'), 'a presented token is never logged')
})

t.test('token file and allowlist problems are reported by name', async (t) => {
  const { loadConfig, ConfigError } = await import('../../src/config/load.js')
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-token-'))
  writeFileSync(join(dir, 'short'), 'short\n')
  const env = { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's' }
  for (const [extra, expected] of [
    [{ PAVE_PROXY_TOKEN_FILE: join(dir, 'short') }, 'PAVE_PROXY_TOKEN_FILE: the token must be at least 16 characters'],
    [{ PAVE_PROXY_TOKEN_FILE: join(dir, 'missing') }, `PAVE_PROXY_TOKEN_FILE: cannot read ${join(dir, 'missing')} (ENOENT)`],
    [{ PAVE_PROXY_ALLOW: '10.0.0.0/8,not-a-block' }, 'PAVE_PROXY_ALLOW: "not-a-block" is not a CIDR block such as 10.0.0.0/8 or ::1/128'],
    [{ PAVE_CLOCK_SKEW_CORRECTION: 'maybe' }, 'PAVE_CLOCK_SKEW_CORRECTION must be boolean']
  ] as const) {
    try {
      loadConfig({ env: { ...env, ...extra } })
      t.fail('expected a ConfigError')
    } catch (error) {
      t.type(error, ConfigError)
      t.same((error as InstanceType<typeof ConfigError>).problems, [expected])
    }
  }
})
