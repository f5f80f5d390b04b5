import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { startTlsProxy } from '../helpers/tls-proxy.js'
import { makeClientCa } from '../fixtures/client-ca.js'

/** The image's HEALTHCHECK script, run as its own process as the container runs it. */
const HEALTHCHECK = fileURLToPath(new URL('../../src/healthcheck.ts', import.meta.url))

const pki = makeClientCa()
t.teardown(pki.cleanup)

async function runHealthcheck (env: Record<string, string>): Promise<{ code: number | null, stdout: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', HEALTHCHECK], {
    // A process of its own; tested by what it does, not by coverage.
    env: { PATH: process.env.PATH ?? '', _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  return await new Promise((resolve) => { child.on('close', (code) => { resolve({ code, stdout }) }) })
}

t.test('the health check against the real proxy with TLS on', async (t) => {
  const upstream = await startUpstream()
  const tls = await startTlsProxy({ upstreamUrl: upstream.url, pki, clientAuth: 'request' })
  const requiring = await startTlsProxy({ upstreamUrl: upstream.url, pki, clientAuth: 'require' })
  const plain = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await tls.close(); await requiring.close(); await plain.close(); await upstream.close() })
  const certEnv = { PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile }
  const healthzCalls = (): number => tls.logs.filter((l) => l.includes('"url":"/healthz"')).length

  t.same(await runHealthcheck({ PORT: String(tls.port), ...certEnv }), { code: 0, stdout: 'healthy: /healthz answered 200 over TLS\n' },
    'PAVE_PROXY_TLS_CERT_FILE set: HTTPS to 127.0.0.1, the private-CA certificate not verified')
  t.equal(healthzCalls(), 1, 'it reached /healthz')
  t.same(await runHealthcheck({ PORT: String(tls.port) }), { code: 0, stdout: 'healthy: /healthz answered 200 over TLS\n' },
    'TLS set in the YAML file only: the plain request is reset, asked again over TLS')
  t.equal(healthzCalls(), 2)
  t.same(await runHealthcheck({ PORT: String(requiring.port), ...certEnv }), {
    code: 0, stdout: 'healthy: the TLS listener answered the handshake and requires a client certificate\n'
  }, 'clientAuth: require — the listener\'s refusal of a certificate-less handshake shows it is alive')
  const mismatch = await runHealthcheck({ PORT: String(plain.port), ...certEnv })
  t.equal(mismatch.code, 1, 'TLS expected, plain HTTP listening: unhealthy')
  t.match(mismatch.stdout, /^unhealthy: .*EPROTO.*wrong version number[^\n]*\n$/, 'one line')
  t.same(await runHealthcheck({ PORT: String(plain.port) }), { code: 0, stdout: 'healthy: /healthz answered 200\n' }, 'plain as before')
})
