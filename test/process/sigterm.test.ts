import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { ACCOUNT } from '../helpers/upstream.js'
import { collect, spawnMain, waitForOutput } from '../helpers/spawn.js'

const env = (upstreamUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
  PAVE_USERNAME: ACCOUNT.username,
  PAVE_API_KEY: ACCOUNT.apiKey,
  PAVE_API_SECRET: ACCOUNT.secret,
  PAVE_UPSTREAM_URL: upstreamUrl,
  PORT: '0',
  ...extra
})

t.test('SIGTERM with a request in flight: readiness drops, the request finishes, exit 0', async (t) => {
  let release: () => void = () => {}
  const upstream = await startUpstream({
    handler: (req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('started…')
        release = () => res.end('finished')
        return
      }
      res.writeHead(200).end('ok')
    }
  })
  t.teardown(() => upstream.close())
  const child = spawnMain([], env(upstream.url, { PAVE_PROXY_SHUTDOWN_DELAY_MS: '400', PAVE_PROXY_SHUTDOWN_TIMEOUT_MS: '10000' }))
  const output = collect(child)
  const [, port] = await waitForOutput(output.stdout, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/)
  const base = `http://127.0.0.1:${port ?? ''}`

  const inFlight = await request(`${base}/slow`)
  t.equal(inFlight.statusCode, 200)
  child.kill('SIGTERM')
  await waitForOutput(output.stdout, /draining/)
  const ready = await request(`${base}/readyz`)
  t.equal(ready.statusCode, 503, '/readyz answers 503 at once')
  await ready.body.dump()
  const during = await request(`${base}/v1/x`, { reset: true })
  t.equal(during.statusCode, 200, 'still serving during the delay')
  await during.body.dump()
  setTimeout(() => release(), 800)
  t.equal(await inFlight.body.text(), 'started…finished', 'the in-flight stream finished')
  const result = await output.done
  t.equal(result.code, 0)
  t.match(result.stdout, '"msg":"stopped"')
})

t.test('a second signal exits at once', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const child = spawnMain([], env(upstream.url, { PAVE_PROXY_SHUTDOWN_DELAY_MS: '60000' }))
  const output = collect(child)
  await waitForOutput(output.stdout, /Server listening/)
  child.kill('SIGTERM')
  await waitForOutput(output.stdout, /draining/)
  child.kill('SIGTERM')
  const result = await output.done
  t.equal(result.code, 1)
  t.match(result.stdout, 'second signal')
})

t.test('the shutdown timeout bounds a stuck stream; exit 0', async (t) => {
  const upstream = await startUpstream({
    handler: (_req, res) => { res.writeHead(200); res.write('never ends') }
  })
  t.teardown(() => upstream.close())
  const child = spawnMain([], env(upstream.url, { PAVE_PROXY_SHUTDOWN_DELAY_MS: '0', PAVE_PROXY_SHUTDOWN_TIMEOUT_MS: '300' }))
  const output = collect(child)
  const [, port] = await waitForOutput(output.stdout, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/)
  const stuck = await request(`http://127.0.0.1:${port ?? ''}/stream`)
  child.kill('SIGINT')
  await t.rejects(stuck.body.text(), 'the stuck stream is cut')
  const result = await output.done
  t.equal(result.code, 0)
  t.match(result.stdout, 'shutdown timeout reached')
})
