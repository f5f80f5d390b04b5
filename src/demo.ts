#!/usr/bin/env node
/**
 * `npm run demo`: pave-mock on a free local port, pave-proxy in front of it with
 * the (fake) demo credentials, and curl commands to paste. Ctrl-C stops both.
 *
 * The proxy serves two accounts: the default one (`/`) with the right secret, and
 * one under `/wrong-secret` signing with a wrong secret, to show PAVE's 403
 * coming back through the proxy untouched.
 *
 * Environment: `PORT` (default 8080; when taken, a free port is used instead),
 * `LOG_LEVEL` (the proxy's, default info).
 */
import { resolve } from 'node:path'
import { readFileSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfig } from './config/load.js'
import { DEMO_ACCOUNT } from './mock/accounts.js'
import { startPaveMock } from './mock/server.js'

const DEFAULT_DEMO_PORT = '8080'
const WRONG_SECRET_PREFIX = '/wrong-secret'

/** The second account, as a config file that exists only in memory. */
const DEMO_CONFIG_PATH = resolve('pave-proxy-demo.yaml')
const DEMO_CONFIG = `accounts:
  - name: wrong-secret
    prefix: ${WRONG_SECRET_PREFIX}
    username: ${DEMO_ACCOUNT.username}
    apiKey: ${DEMO_ACCOUNT.apiKey}
    apiSecret: wrong-secret-not-real
`

function fail (message: string): never {
  process.stderr.write(`demo: ${message}\n`)
  process.exit(1)
}

const mock = await startPaveMock({ accounts: [DEMO_ACCOUNT] })

const config = loadConfig({
  env: {
    PAVE_USERNAME: DEMO_ACCOUNT.username,
    PAVE_API_KEY: DEMO_ACCOUNT.apiKey,
    PAVE_API_SECRET: DEMO_ACCOUNT.secret,
    PAVE_UPSTREAM_URL: mock.url,
    PAVE_PROXY_CONFIG: DEMO_CONFIG_PATH,
    HOST: '127.0.0.1',
    PORT: process.env.PORT ?? DEFAULT_DEMO_PORT,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info'
  },
  argv: [],
  readFile: (path) => (path === DEMO_CONFIG_PATH ? DEMO_CONFIG : readFileSync(path, 'utf8'))
})
const proxy = await buildApp(config)
try {
  await proxy.listen({ host: config.host, port: config.port })
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
  process.stderr.write(`demo: port ${config.port} is taken; using a free port instead\n`)
  await proxy.listen({ host: config.host, port: 0 })
}
const address = proxy.server.address()
if (address === null || typeof address === 'string') fail('the proxy has no TCP address')
const url = `http://${config.host}:${address.port}`

closeWithGrace({ delay: 10_000 }, async ({ err }) => {
  if (err !== undefined) process.stderr.write(`demo: ${err.message}\n`)
  await proxy.close()
  await mock.close()
})

// Check the whole chain once, and get a real session key for the commands below.
const created = await fetch(`${url}/v1/sessions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ vehicle: { vin: 'JN1CV6AR9BMXXXXXX' } })
})
const session = await created.json() as { session_key?: string }
if (created.status !== 200 || session.session_key === undefined) fail(`the first call through the proxy answered ${created.status}`)

const vin = '1HGCM82633A004352'
/** A fictional number (555-01xx is reserved for fiction). */
const DEMO_PHONE = '+1-555-0100'
process.stdout.write(`
pave-proxy demo: a local PAVE mock, and pave-proxy signing in front of it.
Nothing leaves this machine; the credentials are fake (user ${DEMO_ACCOUNT.username}, key ${DEMO_ACCOUNT.apiKey}).

  pave-proxy is listening on ${url}
  mock PAVE API (upstream)   ${mock.url}

Paste these (no credentials needed: the proxy adds API-Key, API-Timestamp and API-Token):

  # create a session
  curl -s -X POST ${url}/v1/sessions -H 'content-type: application/json' -d '{"vehicle": {"vin": "${vin}"}}'

  # read one back (this one was created at start-up)
  curl -s ${url}/v1/sessions/${session.session_key}

  # list the callbacks
  curl -s ${url}/v1/callbacks

  # resend that session's SMS (PAVE v2: the proxy sets API-Access-Token; once per session)
  curl -s -X POST ${url}/v2/capture/sessions/${session.session_key}/resend -H 'content-type: application/json' -d '{"phone": "${DEMO_PHONE}"}'

  # the same call, signed with a wrong secret: PAVE's 403 comes back through the proxy
  curl -s -i ${url}${WRONG_SECRET_PREFIX}/v1/callbacks

Press Ctrl-C to stop.
`)
