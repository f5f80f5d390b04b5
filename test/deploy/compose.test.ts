import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ENVIRONMENT_VARIABLES } from '../../src/config/load.js'
import { startProxy } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { ROOT, configFromEnvironment, imageEnvironment } from './manifests.js'

interface ComposeService {
  build?: string
  image?: string
  entrypoint?: string[]
  command?: string[]
  environment?: Record<string, string>
  secrets?: string[]
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test?: string[], disable?: boolean, interval?: string, timeout?: string, retries?: number }
  read_only?: boolean
  cap_drop?: string[]
  security_opt?: string[]
  stop_signal?: string
  stop_grace_period?: string
  restart?: string
}
interface ComposeFile { services: Record<string, ComposeService>, secrets: Record<string, { file?: string, environment?: string }> }

/** `${NAME:-default}` as Compose reads it with none of the variables set. */
function interpolate (value: string): string {
  return value.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1')
}

const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')
const compose = JSON.parse(interpolate(JSON.stringify(parseYaml(text, { merge: true, uniqueKeys: true })))) as ComposeFile
const { 'pave-mock': mock, 'pave-proxy': proxy, 'example-client': client } = compose.services as Record<string, ComposeService | undefined>
const EXAMPLE_CLIENT = join(ROOT, 'deploy', 'compose', 'example-client.mjs')
const seconds = (duration: string | undefined): number => Number(/^(\d+)s$/.exec(duration ?? '')?.[1] ?? NaN)

t.test('three services of one image: the mock, the proxy and a one-shot example client', async (t) => {
  t.same(Object.keys(compose.services).sort(), ['example-client', 'pave-mock', 'pave-proxy'])
  for (const [name, service] of Object.entries(compose.services)) {
    t.equal(service.image, 'pave-proxy:local', `${name}: the image of this repository`)
    t.equal(service.read_only, true, `${name}: read-only root filesystem`)
    t.same(service.cap_drop, ['ALL'], `${name}: no capabilities`)
    t.same(service.security_opt, ['no-new-privileges:true'], `${name}: no privilege escalation`)
  }
  t.equal(mock?.build, '.')
  t.equal(proxy?.build, '.')
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  t.same(mock?.entrypoint, ['node', `/app/${pkg.bin['pave-mock'] ?? '?'}`], 'the mock is the pave-mock bin of this package')
})

t.test('the proxy: its environment is a valid configuration pointing at the mock, the secret a Compose secret file', async (t) => {
  const env = proxy?.environment ?? {}
  for (const name of Object.keys(env)) t.ok(ENVIRONMENT_VARIABLES.includes(name), `${name} is read by pave-proxy`)
  t.notOk('PAVE_API_SECRET' in env, 'no secret in the environment')
  const secretName = /^\/run\/secrets\/(.+)$/.exec(env.PAVE_API_SECRET_FILE ?? '')?.[1] ?? ''
  t.ok(proxy?.secrets?.includes(secretName), `the service is given the secret ${secretName}`)
  const secretFile = compose.secrets[secretName]?.file ?? ''
  t.ok(existsSync(join(ROOT, secretFile)), `the secret's file ${secretFile} exists`)
  t.equal(readFileSync(join(ROOT, secretFile), 'utf8').trim(), 'demo-secret-not-real', 'the mock\'s demo secret, obviously fake')
  t.same([env.PAVE_USERNAME, env.PAVE_API_KEY], ['demo-user', 'demo-key-not-real'], 'the mock\'s demo account by default')

  const config = configFromEnvironment({ ...imageEnvironment(), ...env })
  const port = /^--port$/.test(mock?.command?.[2] ?? '') ? mock?.command?.[3] : undefined
  t.same(mock?.command, ['--host', '0.0.0.0', '--port', port], 'the mock listens on the Compose network')
  t.equal(config.upstream.url, `http://pave-mock:${port ?? '?'}`, 'upstream: the mock service')
  t.same(proxy?.ports, [`127.0.0.1:8080:${config.port}`], 'published on the host\'s loopback only, to the port it listens on')
  t.equal(proxy?.stop_signal, 'SIGTERM')
  t.ok(seconds(proxy?.stop_grace_period) >= (config.shutdown.delayMs + config.shutdown.timeoutMs) / 1000, `stop_grace_period ${proxy?.stop_grace_period ?? '-'} outlasts the drain`)
})

t.test('health checks gate the start order', async (t) => {
  t.same(mock?.healthcheck?.test?.slice(0, 2), ['CMD', 'node'], 'the mock: exec form with node (no shell in the image)')
  t.equal(proxy?.healthcheck?.test, undefined, 'the proxy: the image\'s own HEALTHCHECK')
  t.notOk(proxy?.healthcheck?.disable)
  t.same(proxy?.depends_on, { 'pave-mock': { condition: 'service_healthy' } })
  t.same(client?.depends_on, { 'pave-proxy': { condition: 'service_healthy' } })
  t.equal(client?.healthcheck?.disable, true, 'the one-shot client has no health check')
  t.equal(client?.restart, 'no')
})

t.test('the example client is the file beside the Compose file, calling the proxy service', async (t) => {
  t.same(client?.volumes, ['./deploy/compose/example-client.mjs:/example/client.mjs:ro'])
  t.same(client?.entrypoint, ['node', '/example/client.mjs'])
  t.ok(existsSync(EXAMPLE_CLIENT))
  const config = configFromEnvironment({ ...imageEnvironment(), ...proxy?.environment })
  t.equal(client?.environment?.PAVE_PROXY_URL, `http://pave-proxy:${config.port}`)
})

async function runClient (proxyUrl: string): Promise<{ code: number | null, stdout: string }> {
  const child = spawn(process.execPath, [EXAMPLE_CLIENT], { env: { PATH: process.env.PATH ?? '', _TAPJS_PROCESSINFO_COVERAGE_: '0', PAVE_PROXY_URL: proxyUrl }, stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  return await new Promise((resolve) => child.on('close', (code) => { resolve({ code, stdout }) }))
}

t.test('the example client creates a session through a real proxy, and fails loudly otherwise', async (t) => {
  const upstream = await startUpstream({
    handler: (_req, res, received) => {
      const signed = received.signedBy !== undefined
      res.writeHead(signed ? 200 : 403, { 'content-type': 'application/json' })
      res.end(signed ? JSON.stringify({ session_key: 'UCB-C3NPR4AGQZ' }) : '{"message":"Unable to validate the request"}')
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const success = await runClient(proxy.url)
  t.equal(success.code, 0)
  t.match(success.stdout, `POST ${proxy.url}/v1/sessions → 200`)
  t.match(success.stdout, /created session UCB-C3NPR4AGQZ\n$/)
  t.equal(upstream.received[0]?.method, 'POST')
  t.equal(upstream.received[0]?.url, '/v1/sessions')
  t.match(JSON.parse(upstream.received[0]?.body.toString() ?? '{}'), { vehicle: { vin: '1HGCM82633A004352' } })

  const refused = await runClient(upstream.url) // straight to the upstream: unsigned
  t.equal(refused.code, 1)
  t.match(refused.stdout, /→ 403/)

  await upstream.close()
  const proxyError = await runClient(proxy.url)
  t.equal(proxyError.code, 1)
  t.match(proxyError.stdout, /→ 502 \(PAVE_PROXY_/, 'the proxy\'s own error code is shown')
})
