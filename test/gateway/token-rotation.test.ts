/**
 * A caller's token rotated in the real process, with a request loop running: a new line
 * added, the callers switching to it, the old line removed — zero failed requests,
 * and the old token refused afterwards. The file watch reloads it (no SIGHUP).
 */
import t from 'tap'
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { collect, spawnMain, waitForOutput } from '../helpers/spawn.js'

const OLD = 'rotating-token-old-not-real-000000'
const NEW = 'rotating-token-new-not-real-111111'

async function waitForCount (read: () => string, text: string, count: number): Promise<void> {
  const started = Date.now()
  while (read().split(text).length - 1 < count) {
    if (Date.now() - started > 10_000) throw new Error(`"${text}" did not appear ${count} times`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

t.test('tokens rotate under a request loop with zero failures', async (t) => {
  const upstream = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-token-rotation-'))
  const tokenFile = join(dir, 'intake.tokens')
  const writeTokens = (tokens: string[]): void => {
    writeFileSync(join(dir, '.tokens.tmp'), tokens.join('\n') + '\n')
    renameSync(join(dir, '.tokens.tmp'), tokenFile)
  }
  writeTokens([OLD])
  const configFile = join(dir, 'pave-proxy.yaml')
  writeFileSync(configFile, [
    'callers:',
    '  - name: intake',
    `    tokenFile: ${tokenFile}`,
    '    allow: [{ methods: [GET], paths: [/v1/callbacks] }]'
  ].join('\n') + '\n')
  const child = spawnMain([], {
    PAVE_PROXY_CONFIG: configFile,
    PAVE_USERNAME: ACCOUNT.username,
    PAVE_API_KEY: ACCOUNT.apiKey,
    PAVE_API_SECRET: ACCOUNT.secret,
    PAVE_UPSTREAM_URL: upstream.url,
    PORT: '0',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0'
  })
  const output = collect(child)
  t.teardown(async () => { child.kill('SIGKILL'); await upstream.close() })
  const [, port] = await waitForOutput(output.stdout, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/)
  const base = `http://127.0.0.1:${port ?? ''}`
  const agent = new Agent({ connections: 4 })
  t.teardown(async () => { await agent.close() })

  let token = OLD
  let running = true
  let failures = 0
  let sent = 0
  const loop = async (): Promise<void> => {
    while (running) {
      const res = await request(`${base}/v1/callbacks`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } }).catch(() => undefined)
      sent++
      if (res === undefined || res.statusCode !== 200) failures++
      await res?.body.dump()
    }
  }
  const loops = [loop(), loop(), loop()]

  await new Promise((resolve) => setTimeout(resolve, 300))
  writeTokens([OLD, NEW]) // the new line added beside the old
  await waitForCount(output.stdout, 'configuration reloaded', 1)
  await new Promise((resolve) => setTimeout(resolve, 300))
  token = NEW // the callers move to the new token
  await new Promise((resolve) => setTimeout(resolve, 300))
  writeTokens([NEW]) // the old line removed
  await waitForCount(output.stdout, 'configuration reloaded', 2)
  await new Promise((resolve) => setTimeout(resolve, 300))
  writeTokens(['too-short']) // a broken file: refused, the running callers stay
  await waitForCount(output.stdout, 'the new configuration is invalid', 1)
  await new Promise((resolve) => setTimeout(resolve, 300))
  running = false
  await Promise.all(loops)

  t.equal(failures, 0, `zero failures in ${sent} requests`)
  t.ok(sent > 30, `the loop kept running (${sent})`)
  const old = await request(`${base}/v1/callbacks`, { dispatcher: agent, headers: { authorization: `Bearer ${OLD}` } })
  t.equal(old.statusCode, 401, 'the removed token proves nothing any more')
  await old.body.dump()
  child.kill('SIGTERM')
  const finished = await output.done
  t.notOk(finished.stdout.includes(OLD) || finished.stdout.includes(NEW) || finished.stderr.includes(NEW), 'no token in the output')
  t.match(finished.stdout, /"audit":true,"reqId":"[^"]+","caller":"unknown","proof":null,"remoteAddress":"127\.0\.0\.1","account":"default","method":"GET","path":"\/v1\/callbacks","status":401,"code":"PAVE_PROXY_CALLER_UNKNOWN"/, 'the refusal is in the audit trail on stdout')
})
