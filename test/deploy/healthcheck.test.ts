import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'

/** The image's HEALTHCHECK script, run the way the container runs it: as its own process. */
const HEALTHCHECK = fileURLToPath(new URL('../../src/healthcheck.ts', import.meta.url))

interface Run { code: number | null, stdout: string, ms: number }

async function runHealthcheck (port: number | undefined): Promise<Run> {
  const started = Date.now()
  const child = spawn(process.execPath, ['--import', 'tsx', HEALTHCHECK], {
    // A process of its own, as in the container; tested by what it does, not by coverage.
    env: { PATH: process.env.PATH ?? '', _TAPJS_PROCESSINFO_COVERAGE_: '0', ...(port !== undefined ? { PORT: String(port) } : {}) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  return await new Promise((resolve) => {
    child.on('close', (code) => { resolve({ code, stdout, ms: Date.now() - started }) })
  })
}

async function listen (server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { resolve() })
  })
  return (server.address() as AddressInfo).port
}

async function close (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

t.test('healthy: /healthz answers 200 → exit 0', async (t) => {
  const paths: string[] = []
  const server = createServer((req, res) => {
    paths.push(`${req.method ?? ''} ${req.url ?? ''}`)
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
  })
  const port = await listen(server)
  t.teardown(() => close(server))
  const run = await runHealthcheck(port)
  t.equal(run.code, 0)
  t.equal(run.stdout, 'healthy: /healthz answered 200\n')
  t.same(paths, ['GET /healthz'], 'one GET of /healthz on 127.0.0.1:$PORT')
})

t.test('unhealthy: any other status → exit 1', async (t) => {
  const server = createServer((_req, res) => { res.writeHead(500).end() })
  const port = await listen(server)
  t.teardown(() => close(server))
  const run = await runHealthcheck(port)
  t.equal(run.code, 1)
  t.equal(run.stdout, 'unhealthy: /healthz answered 500\n')
})

t.test('unhealthy: nothing listening → exit 1', async (t) => {
  const server = createServer()
  const port = await listen(server)
  await close(server)
  const run = await runHealthcheck(port)
  t.equal(run.code, 1)
  t.match(run.stdout, /^unhealthy: connect ECONNREFUSED 127\.0\.0\.1:\d+\n$/)
})

t.test('unhealthy: no answer within 2 s → exit 1, without waiting longer', async (t) => {
  const server = createServer(() => { /* never answers */ })
  const port = await listen(server)
  t.teardown(() => close(server))
  const run = await runHealthcheck(port)
  t.equal(run.code, 1)
  t.equal(run.stdout, 'unhealthy: no answer within 2000 ms\n')
  t.ok(run.ms >= 2000 && run.ms < 6000, `gave up after ${run.ms} ms`)
})

t.test('without PORT it checks the default port 8080', async (t) => {
  const server = createServer((req, res) => { res.writeHead(req.url === '/healthz' ? 200 : 404).end() })
  try {
    await listen(server, 8080)
  } catch (error) {
    // Something else holds 8080 here: at least show the script went there.
    const run = await runHealthcheck(undefined)
    t.ok(run.code === 0 || run.code === 1, `port 8080 busy (${(error as NodeJS.ErrnoException).code ?? ''}); exit ${String(run.code)}: ${run.stdout.trim()}`)
    return
  }
  t.teardown(() => close(server))
  const run = await runHealthcheck(undefined)
  t.equal(run.code, 0)
  t.equal(run.stdout, 'healthy: /healthz answered 200\n')
})
