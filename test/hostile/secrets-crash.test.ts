/**
 * Crash and exit paths of the real process print neither the secret nor a minted
 * token: an invalid configuration, a port already in use, an uncaught exception
 * and an unhandled rejection (each carrying the environment and the secret as
 * properties), SIGTERM, and --check-config; at log level trace, after signed
 * requests went upstream.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { MAIN, collect, runMain, waitForOutput, type Finished } from '../helpers/spawn.js'
import { SecretWatch } from './lib/watch.js'
import { ACCOUNT } from '../helpers/upstream.js'

const watch = new SecretWatch()
const PRELOAD = fileURLToPath(new URL('./lib/crash-preload.ts', import.meta.url))

function env (upstreamUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PAVE_USERNAME: ACCOUNT.username,
    PAVE_API_KEY: ACCOUNT.apiKey,
    PAVE_API_SECRET: ACCOUNT.secret,
    PAVE_UPSTREAM_URL: upstreamUrl,
    LOG_LEVEL: 'trace',
    HOST: '127.0.0.1',
    PORT: '0',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0',
    ...extra
  }
}

function record (finished: Finished): void {
  watch.saw(finished.stdout)
  watch.saw(finished.stderr)
}

/** Starts the proxy with the crash preload, makes two signed requests through it, and waits for it to end. */
async function crashAfterRequests (mode: 'throw' | 'reject', upstreamUrl: string): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', PRELOAD, MAIN], {
    env: { PATH: process.env.PATH ?? '', _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env(upstreamUrl, { PAVE_TEST_CRASH: mode, PAVE_TEST_CRASH_AFTER_MS: '2500' }) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output = collect(child)
  const ready = await waitForOutput(output.stdout, /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/)
  for (const path of ['/v1/sessions/UCB-C3NPR4AGQZ', '/v1/callbacks']) {
    const res = await request(`http://127.0.0.1:${ready[1] as string}${path}`, { headers: { 'api-token': 'caller-token-not-real' } })
    watch.saw(await res.body.text())
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const finished = await output.done
  clearTimeout(timer)
  return finished
}

t.test('an uncaught exception and an unhandled rejection carrying the config: logged by message, exit 1, nothing secret printed', async (t) => {
  const upstream = await watch.upstream()
  t.teardown(() => upstream.close())
  for (const mode of ['throw', 'reject'] as const) {
    const finished = await crashAfterRequests(mode, upstream.url)
    record(finished)
    t.not(finished.code, 0, `${mode}: a failing exit code (${String(finished.code)})`)
    t.match(finished.stdout, /uncaught error: shutting down/, `${mode}: the crash is logged`)
    t.match(finished.stdout, /injected failure for the crash-path test/, `${mode}: with its message`)
    t.notMatch(finished.stdout + finished.stderr, /PAVE_API_SECRET|"config":/, `${mode}: the attached environment is not dumped`)
  }
  t.ok(upstream.received.length >= 4, 'signed requests went upstream first (their tokens are watched)')
})

t.test('an invalid configuration, a port in use, --check-config and SIGTERM print nothing secret', async (t) => {
  const upstream = await watch.upstream()
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await upstream.close(); busy.close() })
  const invalid = await runMain([], env(upstream.url, { PORT: 'eighty', PAVE_UPSTREAM_TIMEOUT_MS: '-1', PAVE_PROXY_ALLOW: 'not-a-cidr' }))
  record(invalid)
  t.equal(invalid.code, 2, 'invalid configuration: exit 2')
  const inUse = await runMain([], env(upstream.url, { PORT: String((busy.address() as AddressInfo).port) }))
  record(inUse)
  t.equal(inUse.code, 1, 'port in use: exit 1')
  t.match(inUse.stderr + inUse.stdout, /EADDRINUSE/)
  const check = await runMain(['--check-config'], env(upstream.url))
  record(check)
  t.equal(check.code, 0)
  const missingFile = await runMain([], { ...env(upstream.url), PAVE_API_SECRET: '', PAVE_API_SECRET_FILE: '/nonexistent/secret-file' })
  record(missingFile)
  t.equal(missingFile.code, 2)

  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], { env: { PATH: process.env.PATH ?? '', _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env(upstream.url) }, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = collect(child)
  const ready = await waitForOutput(output.stdout, /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/)
  const res = await request(`http://127.0.0.1:${ready[1] as string}/v1/callbacks`)
  watch.saw(await res.body.text())
  child.kill('SIGTERM')
  const stopped = await output.done
  record(stopped)
  t.equal(stopped.code, 0, 'SIGTERM: a clean exit')
})

t.test('no secret or minted token in any log line, output or response', async (t) => { watch.check(t) })
