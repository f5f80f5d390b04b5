/** The pave-mock bin: flags and environment, usage errors, serving, and a clean stop on SIGINT/SIGTERM. */
import t, { type Test } from 'tap'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { collect, waitForOutput, type Finished } from '../helpers/spawn.js'
import { MOCK_MAIN, spawnTs } from './spawn.js'
import { startPaveMock } from '../../src/mock/server.js'
import { computeToken, formatTimestamp } from '../../src/signing/pave-token.js'
import { ALICE, FORBIDDEN } from './client.js'

function spawnBin (args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawnTs(MOCK_MAIN, args, env)
}

async function run (args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return await collect(spawnBin(args, env)).done
}

/** Starts the bin and waits for its URL. */
async function serve (t: Test, args: string[], env: Record<string, string> = {}): Promise<{ url: string, child: ChildProcess, done: Promise<Finished>, stdout: () => string }> {
  const child = spawnBin(args, env)
  const { done, stdout } = collect(child)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const match = await waitForOutput(stdout, /pave-mock listening on (http:\/\/\S+)/)
  return { url: match[1]!, child, done, stdout }
}

function headersAt (account: typeof ALICE, ms: number): Record<string, string> {
  const timestamp = formatTimestamp(new Date(ms))
  return { 'API-Key': account.apiKey, 'API-Timestamp': timestamp, 'API-Token': computeToken(account, timestamp) }
}

t.test('--help prints the options and exits 0', async (t) => {
  const { code, stdout } = await run(['--help'])
  t.equal(code, 0)
  for (const flag of ['--host', '--port', '--accounts', '--token-lifetime-seconds', '--clock-offset-ms', '--fault', '--log-level']) t.match(stdout, flag)
})

t.test('usage and configuration errors exit 2 with a message', async (t) => {
  const dir = t.testdir({ 'bad.yaml': '- username: x\n' })
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--colour', 'red'], {}, /Unknown option '--colour'/],
    [['--port', 'eighty'], {}, /--port must be an integer of at least 0 \(got "eighty"\)/],
    [['--port', '70000'], {}, /--port must be at most 65535/],
    [[], { PAVE_MOCK_TOKEN_LIFETIME_SECONDS: '0' }, /--token-lifetime-seconds must be an integer of at least 1/],
    [['--clock-offset-ms=soon'], {}, /--clock-offset-ms must be an integer \(got "soon"\)/],
    [['--fault', 'GET /v1/sessions status=abc'], {}, /status must be an integer/],
    [[], { PAVE_MOCK_FAULTS: 'nonsense' }, /expected \[METHOD\] PATH/],
    [['--log-level', 'loud'], {}, /unknown log level "loud"/],
    [['--accounts', join(dir, 'bad.yaml')], {}, /apiKey, secret must be a non-empty string/],
    [['--accounts', join(dir, 'missing.yaml')], {}, /cannot read the file \(ENOENT\)/]
  ]
  for (const [args, env, message] of cases) {
    const { code, stderr } = await run(args, env)
    t.equal(code, 2, args.join(' ') || JSON.stringify(env))
    t.match(stderr, message)
  }
})

t.test('serves with flags: accounts file, fault, clock offset, lifetime; SIGINT stops it with exit 0', async (t) => {
  const dir = t.testdir({ 'accounts.json': JSON.stringify({ accounts: [ALICE] }) })
  const { url, child, done, stdout } = await serve(t, [
    '--port', '0', '--host', '127.0.0.1', '--accounts', join(dir, 'accounts.json'),
    '--clock-offset-ms=-120000', '--token-lifetime-seconds', '60', '--fault', 'DELETE /v1/callbacks/* status=502', '--log-level', 'silent'
  ])
  t.match(stdout(), /account alice-user \(API key alice-key-not-real\)/)
  t.notMatch(stdout(), ALICE.secret, 'the secret of a configured account is never printed')
  t.match(stdout(), /injecting 1 fault rule/)

  const now = Date.now()
  const refused = await fetch(`${url}/v1/callbacks`, { headers: headersAt(ALICE, now) })
  t.equal(refused.status, 403, 'real time is 2 minutes in the future of a clock 2 minutes behind, beyond a 60 s lifetime')
  t.same(await refused.json(), FORBIDDEN)
  const accepted = await fetch(`${url}/v1/callbacks`, { headers: headersAt(ALICE, now - 120_000) })
  t.equal(accepted.status, 200)
  t.ok(Math.abs(Date.parse(accepted.headers.get('date') ?? '') - (now - 120_000)) < 5_000, 'Date shows the mock\'s clock')
  const faulted = await fetch(`${url}/v1/callbacks/SESSION:COMPLETE`, { method: 'DELETE' })
  t.equal(faulted.status, 502)

  child.kill('SIGINT')
  const { code, signal } = await done
  t.equal(code, 0)
  t.equal(signal, null)
})

t.test('serves with environment variables and the demo account; SIGTERM stops it with exit 0', async (t) => {
  const { url, child, done, stdout } = await serve(t, [], { PAVE_MOCK_PORT: '0', PAVE_MOCK_HOST: '127.0.0.1', PAVE_MOCK_FAULTS: 'POST /v1/sessions status=503 times=1; GET /nowhere latency=10', LOG_LEVEL: 'info' })
  t.match(stdout(), /PAVE_USERNAME=demo-user PAVE_API_KEY=demo-key-not-real PAVE_API_SECRET=demo-secret-not-real/, 'prints how to point the proxy at it')
  t.match(stdout(), /injecting 2 fault rule/)
  const demo = { username: 'demo-user', apiKey: 'demo-key-not-real', secret: 'demo-secret-not-real' }
  t.equal((await fetch(`${url}/v1/sessions`, { method: 'POST', headers: headersAt(demo, Date.now()) })).status, 503)
  const created = await fetch(`${url}/v1/sessions`, { method: 'POST', headers: headersAt(demo, Date.now()) })
  t.equal(created.status, 200)
  t.match(await created.json(), { session_key: /^[A-Z]{3}-[A-Z0-9]{10}$/ })
  await waitForOutput(stdout, /"msg":"request completed"/)
  t.notMatch(stdout(), /demo-secret-not-real[^\n]*"level"|"level"[^\n]*demo-secret-not-real/, 'log lines carry no secret')
  child.kill('SIGTERM')
  t.equal((await done).code, 0)
})

t.test('a port already in use exits 1', async (t) => {
  const busy = await startPaveMock()
  t.teardown(busy.close)
  const { code, stderr } = await run(['--port', String(busy.port)])
  t.equal(code, 1)
  t.match(stderr, /cannot start: .*EADDRINUSE/)
})
