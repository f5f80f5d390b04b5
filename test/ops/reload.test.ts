import t from 'tap'
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startUpstream, type TestAccount } from '../helpers/upstream.js'
import { collect, spawnMain, waitForOutput } from '../helpers/spawn.js'
import { buildApp } from '../../src/app.js'
import { logCapture, testConfig } from '../helpers/proxy.js'

async function waitForCount (read: () => string, text: string, count: number): Promise<void> {
  const started = Date.now()
  while (read().split(text).length - 1 < count) {
    if (Date.now() - started > 10_000) throw new Error(`"${text}" did not appear ${count} times`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const secrets = ['rotation-secret-0-not-real', 'rotation-secret-1-not-real', 'rotation-secret-2-not-real', 'rotation-secret-3-not-real']
const generations: TestAccount[] = secrets.map((secret, i) => ({ username: 'acme', apiKey: 'rotating-key', secret, label: `generation-${i}` }))

/** Lays out a Kubernetes-style secret volume: `..data` → a timestamped dir, `api-secret` → `..data/api-secret`. */
function secretVolume (): { dir: string, file: string, rotate: (secret: string, generation: number) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-volume-'))
  const rotate = (secret: string, generation: number): void => {
    const data = join(dir, `..2026_generation_${generation}`)
    mkdirSync(data)
    writeFileSync(join(data, 'api-secret'), secret + '\n')
    symlinkSync(data, join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data')) // the atomic swap the kubelet does
  }
  rotate(secrets[0] as string, 0)
  symlinkSync(join('..data', 'api-secret'), join(dir, 'api-secret'))
  return { dir, file: join(dir, 'api-secret'), rotate }
}

t.test('secrets rotate without a restart: a request loop across reloads sees zero failures', async (t) => {
  const upstream = await startUpstream({ accounts: generations })
  const volume = secretVolume()
  const configDir = mkdtempSync(join(tmpdir(), 'pave-proxy-reload-'))
  const configFile = join(configDir, 'pave-proxy.yaml')
  writeFileSync(configFile, 'logLevel: info\n')
  const child = spawnMain([], {
    PAVE_PROXY_CONFIG: configFile,
    PAVE_USERNAME: 'acme',
    PAVE_API_KEY: 'rotating-key',
    PAVE_API_SECRET_FILE: volume.file,
    PAVE_UPSTREAM_URL: upstream.url,
    PORT: '0',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0'
  })
  const output = collect(child)
  t.teardown(async () => { child.kill('SIGKILL'); await upstream.close() })
  const [, port] = await waitForOutput(output.stdout, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/)
  const base = `http://127.0.0.1:${port ?? ''}`
  const agent = new Agent({ connections: 4 })

  let running = true
  let failures = 0
  let sent = 0
  const loop = async (): Promise<void> => {
    while (running) {
      const res = await request(`${base}/v1/callbacks`, { dispatcher: agent }).catch(() => undefined)
      sent++
      if (res === undefined || res.statusCode !== 200) failures++
      await res?.body.dump()
    }
  }
  const loops = [loop(), loop(), loop()]

  // Rotation 1 and 3: the kubelet's symlink swap, seen by the directory watch.
  // Rotation 2: a plain rewrite, then SIGHUP.
  for (let generation = 1; generation <= 3; generation++) {
    await new Promise((resolve) => setTimeout(resolve, 300))
    if (generation === 2) {
      volume.rotate(secrets[generation] as string, generation)
      child.kill('SIGHUP')
    } else {
      volume.rotate(secrets[generation] as string, generation)
    }
    await waitForCount(output.stdout, 'configuration reloaded', generation)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  // An invalid change is refused; the running configuration stays.
  writeFileSync(configFile, 'logLevel: shouting\n')
  await waitForOutput(output.stdout, /the new configuration is invalid/)
  await new Promise((resolve) => setTimeout(resolve, 200))
  running = false
  await Promise.all(loops)
  await agent.close()

  t.equal(failures, 0, `zero failures in ${sent} requests`)
  t.ok(sent > 50, `${sent} requests sent`)
  const used = upstream.received.map((r) => r.signedBy)
  t.notOk(used.includes(undefined), 'every request verified with one whole generation of credentials')
  t.equal(used.at(-1), 'generation-3', 'the last secret signs after the reloads')
  for (let g = 0; g <= 3; g++) t.ok(used.includes(`generation-${g}`), `generation ${g} was used`)
  t.notMatch(output.stdout(), /shouting|rotation-secret/, 'neither invalid values nor secrets logged')
  const metrics = await (await request(`${base}/metrics`)).body.text()
  t.match(metrics, /pave_proxy_config_reloads_total\{result="applied"\} [3-9]/)
  t.match(metrics, /pave_proxy_config_reloads_total\{result="rejected"\} [1-9]/)
  t.match(metrics, /pave_proxy_config_last_reload_successful 0\n/, 'the last reload was the rejected one')
  child.kill('SIGTERM')
  t.equal((await output.done).code, 0)
})

t.test('a reload that changes the routes is refused whole; restart-only changes are reported', async (t) => {
  const { stream, lines } = logCapture()
  const config = testConfig({ upstreamUrl: 'http://127.0.0.1:9' })
  const app = await buildApp(config, { logStream: stream })
  t.teardown(() => app.close())
  const renamed = testConfig({ upstreamUrl: 'http://127.0.0.1:9', env: { PAVE_API_SECRET: 'x' } })
  const moved = { ...renamed, accounts: [{ ...renamed.accounts[0]!, prefix: '/elsewhere' }] }
  t.equal(app.reload(moved), false)
  t.equal(app.currentConfig(), config)
  t.ok(lines.some((l) => l.includes('the accounts or their prefixes changed')))
  t.match((await app.inject({ url: '/metrics' })).body, /pave_proxy_config_last_reload_successful 0\n/, 'a rejected reload shows in the gauge')
  const portChanged = testConfig({ upstreamUrl: 'http://127.0.0.1:10', env: { PAVE_API_SECRET: 'new-secret-not-real', LOG_LEVEL: 'warn' } })
  t.equal(app.reload(portChanged), true)
  t.equal(app.currentConfig(), portChanged)
  t.equal(app.log.level, 'warn')
  t.match((await app.inject({ url: '/metrics' })).body, /pave_proxy_config_last_reload_successful 1\n/, 'and an applied one clears it')
  t.match(lines.find((l) => l.includes('configuration reloaded')), /"restartNeeded":\["upstream"\]/)
})
