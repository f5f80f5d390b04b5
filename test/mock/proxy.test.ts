/**
 * pave-proxy (the real process) in front of pave-mock: the mock accepts what the
 * proxy signs, and a proxy configured with a wrong secret gets PAVE's 403 through.
 *
 * The proxy runs as a child process so that this directory's tests cover the
 * mock's files only (the proxy's own tests cover the proxy's).
 */
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { collect, waitForOutput } from '../helpers/spawn.js'
import { startPaveMock, type PaveMock } from '../../src/mock/server.js'
import { computeToken } from '../../src/signing/pave-token.js'
import { FORBIDDEN_TEXT } from './client.js'
import { spawnTs } from './spawn.js'

const PROXY_MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))
const DEMO = { username: 'demo-user', apiKey: 'demo-key-not-real', secret: 'demo-secret-not-real' }

/** Starts pave-proxy on a free port in front of the mock; resolves with its URL. */
async function proxyFor (t: Test, mock: PaveMock, secret: string): Promise<string> {
  const child = spawnTs(PROXY_MAIN, [], {
    PAVE_USERNAME: DEMO.username,
    PAVE_API_KEY: DEMO.apiKey,
    PAVE_API_SECRET: secret,
    PAVE_UPSTREAM_URL: mock.url,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0'
  })
  const { done, stdout } = collect(child)
  t.teardown(async () => {
    child.kill('SIGTERM')
    await done
  })
  return (await waitForOutput(stdout, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/))[1]!
}

t.test('the mock accepts what the proxy signs', async (t) => {
  const mock = await startPaveMock({ accounts: [DEMO] })
  t.teardown(mock.close)
  const proxy = await proxyFor(t, mock, DEMO.secret)
  const res = await fetch(`${proxy}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"session": {"theme": "LITE"}}' })
  t.equal(res.status, 200)
  const { session_key: key } = await res.json() as { session_key: string }
  t.equal((await fetch(`${proxy}/v1/sessions/${key}`)).status, 200)
  const [first] = mock.requests
  t.equal(first?.username, DEMO.username)
  t.equal(first?.headers['api-token'], computeToken(DEMO, first?.headers['api-timestamp'] as string), 'the upstream received a valid token')
  t.same(first?.body, { session: { theme: 'LITE' } })
})

t.test('a proxy with a wrong secret gets PAVE\'s 403 through, byte for byte', async (t) => {
  const mock = await startPaveMock({ accounts: [DEMO] })
  t.teardown(mock.close)
  const proxy = await proxyFor(t, mock, 'wrong-secret-not-real')
  const res = await fetch(`${proxy}/v1/sessions`, { method: 'POST' })
  t.equal(res.status, 403)
  t.equal(res.headers.get('content-type'), 'application/json; charset=utf-8')
  t.equal(await res.text(), FORBIDDEN_TEXT)
  t.ok(mock.requests.length >= 1)
  t.ok(mock.requests.every((r) => r.rejected === 'wrong-token'), 'every attempt was refused for its token')
})
