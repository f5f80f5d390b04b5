/** `npm run demo`: the proxy in front of the mock, ready for curl; a wrong secret shows PAVE's 403; Ctrl-C stops both. */
import t from 'tap'
import { collect, waitForOutput } from '../helpers/spawn.js'
import { startPaveMock } from '../../src/mock/server.js'
import { FORBIDDEN_TEXT } from '../mock/client.js'
import { MOCK_DEMO, spawnTs } from '../mock/spawn.js'

t.test('the demo prints a working proxy URL and commands, and stops with exit 0 on Ctrl-C', async (t) => {
  const child = spawnTs(MOCK_DEMO, [], { PORT: '0' })
  const { done, stdout } = collect(child)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = (await waitForOutput(stdout, /pave-proxy is listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!
  await waitForOutput(stdout, /Press Ctrl-C to stop/)
  const text = stdout()
  t.match(text, `curl -s -X POST ${url}/v1/sessions -H 'content-type: application/json' -d '{"vehicle": {"vin": "1HGCM82633A004352"}}'`)
  t.match(text, `curl -s ${url}/v1/callbacks`)
  t.match(text, `curl -s -i ${url}/wrong-secret/v1/callbacks`)
  t.notMatch(text, /demo-secret-not-real/, 'the secret is not printed')

  const created = await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vehicle": {"vin": "1HGCM82633A004352"}}' })
  t.equal(created.status, 200)
  const session = await created.json() as { session_key: string }
  t.match(session, { session_key: /^[A-Z]{3}-[A-Z0-9]{10}$/, vehicle: { vin: '1HGCM82633A004352' } })
  const readBack = await fetch(`${url}/v1/sessions/${session.session_key}`)
  t.equal(readBack.status, 200)
  t.match(await readBack.json(), { session_key: session.session_key })

  const printedKey = /curl -s \S+\/v1\/sessions\/([A-Z]{3}-[A-Z0-9]{10})\n/.exec(text)?.[1]
  t.ok(printedKey, 'the read-back command has a real session key')
  t.equal((await fetch(`${url}/v1/sessions/${printedKey ?? ''}`)).status, 200, 'and it can be read back')
  const callbacks = await fetch(`${url}/v1/callbacks`)
  t.same(await callbacks.json(), { api_key: 'demo-key-not-real', data: [] })

  t.match(text, `curl -s -X POST ${url}/v2/capture/sessions/${printedKey ?? ''}/resend -H 'content-type: application/json' -d '{"phone": "+1-555-0100"}'`)
  const resend = (): Promise<Response> => fetch(`${url}/v2/capture/sessions/${printedKey ?? ''}/resend`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"phone": "+1-555-0100"}' })
  const resent = await resend()
  t.equal(resent.status, 200)
  t.match(await resent.json(), { status: 'success', session_key: printedKey, phone: '+1-555-0100', days_remaining: 7 })
  t.equal((await resend()).status, 400, 'once per session')

  const wrong = await fetch(`${url}/wrong-secret/v1/callbacks`)
  t.equal(wrong.status, 403)
  t.equal(await wrong.text(), FORBIDDEN_TEXT, 'PAVE\'s 403 body, untouched by the proxy')

  child.kill('SIGINT')
  const { code, signal } = await done
  t.equal(code, 0)
  t.equal(signal, null)
})

t.test('when the port is taken, the demo uses a free one and says so', async (t) => {
  const busy = await startPaveMock()
  t.teardown(busy.close)
  const child = spawnTs(MOCK_DEMO, [], { PORT: String(busy.port), LOG_LEVEL: 'warn' })
  const { done, stdout } = collect(child)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = (await waitForOutput(stdout, /pave-proxy is listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!
  t.not(url, busy.url)
  t.equal((await fetch(`${url}/v1/sessions`, { method: 'POST' })).status, 200)
  child.kill('SIGTERM')
  const finished = await done
  t.equal(finished.code, 0)
  t.match(finished.stderr, `port ${busy.port} is taken; using a free port instead`)
})
