#!/usr/bin/env node
/**
 * The `pave-mock` process: a local PAVE API for development and integration tests.
 * Flags win over environment variables. Exit codes: 0 success, 1 runtime failure
 * (e.g. the port is taken), 2 usage or configuration error.
 */
import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import { DEMO_ACCOUNT, MockAccountsError } from './accounts.js'
import { parseFaultSpec, type FaultRule } from './faults.js'
import { DEFAULT_TOKEN_LIFETIME_SECONDS, startPaveMock, validateTimestampFormats } from './server.js'
import { DEFAULT_TIMESTAMP_FORMAT, TIMESTAMP_FORMATS, type TimestampFormat } from '../signing/pave-token.js'

/** The bin's default port (the library's default is 0, a free port). */
const DEFAULT_BIN_PORT = 4010
const EXIT_USAGE = 2

const USAGE = `Usage: pave-mock [options]

A local stand-in for the PAVE API: PAVE's signature check and 403, sessions,
callbacks and hotspots kept in memory, and optional injected faults.

Options (environment variable in brackets):
  --host <address>                 listen address (PAVE_MOCK_HOST, default 127.0.0.1)
  --port <n>                       listen port, 0 for a free one (PAVE_MOCK_PORT, default ${DEFAULT_BIN_PORT})
  --accounts <file>                YAML or JSON file of accounts (PAVE_MOCK_ACCOUNTS_FILE,
                                   default: the demo account demo-user / demo-key-not-real)
  --token-lifetime-seconds <n>     accepted distance of API-Timestamp from the mock's clock
                                   (PAVE_MOCK_TOKEN_LIFETIME_SECONDS, default ${DEFAULT_TOKEN_LIFETIME_SECONDS})
  --clock-offset-ms <n>            run the mock's clock ahead (+) or behind (-) real time; write
                                   negative values as --clock-offset-ms=-60000 (PAVE_MOCK_CLOCK_OFFSET_MS, default 0)
  --timestamp-formats <list>       API-Timestamp forms accepted, comma-separated: iso-seconds,
                                   iso-millis, unix-seconds, rfc1123 or all
                                   (PAVE_MOCK_TIMESTAMP_FORMATS, default iso-seconds)
  --fault "<spec>"                 inject a fault, repeatable: [METHOD] PATH [latency=ms] [status=n]
                                   [reset=before-headers|mid-body] [hang=before-headers|mid-body] [times=n]
                                   (PAVE_MOCK_FAULTS, specs separated by ";")
  --log-level <level>              pino level: fatal..trace or silent (LOG_LEVEL, default info)
  -h, --help                       show this help

Examples:
  pave-mock --port 4010
  pave-mock --fault "POST /v1/sessions status=503 times=1" --fault "/v1/callbacks* latency=2000"
`

function fail (message: string): never {
  process.stderr.write(`pave-mock: ${message}\n\nRun pave-mock --help for the options.\n`)
  process.exit(EXIT_USAGE)
}

function integer (name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined || value === '') return fallback
  const n = /^-?\d+$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < min) fail(`${name} must be an integer${min > Number.MIN_SAFE_INTEGER ? ` of at least ${min}` : ''} (got "${value}")`)
  return n
}

function timestampFormats (value: string | undefined): readonly TimestampFormat[] {
  if (value === undefined || value.trim() === '') return [DEFAULT_TIMESTAMP_FORMAT]
  if (value.trim() === 'all') return TIMESTAMP_FORMATS
  try {
    return validateTimestampFormats(value.split(',').map((v) => v.trim()).filter((v) => v !== ''))
  } catch (error) {
    fail(`--timestamp-formats: ${(error as Error).message.replace(/^timestampFormats: /, '')}`)
  }
}

async function main (): Promise<void> {
  let values: Record<string, string | string[] | boolean | undefined>
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        accounts: { type: 'string' },
        'token-lifetime-seconds': { type: 'string' },
        'clock-offset-ms': { type: 'string' },
        'timestamp-formats': { type: 'string' },
        fault: { type: 'string', multiple: true },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (error) {
    fail((error as Error).message)
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return
  }
  const env = process.env
  const flag = (name: string): string | undefined => values[name] as string | undefined

  const faultSpecs = (values.fault as string[] | undefined) ?? (env.PAVE_MOCK_FAULTS ?? '').split(';').filter((s) => s.trim() !== '')
  let faults: FaultRule[]
  try {
    faults = faultSpecs.map(parseFaultSpec)
  } catch (error) {
    fail((error as Error).message)
  }
  const logLevel = flag('log-level') ?? env.LOG_LEVEL ?? 'info'
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) fail(`unknown log level "${logLevel}"`)
  const options = {
    host: flag('host') ?? env.PAVE_MOCK_HOST ?? '127.0.0.1',
    port: integer('--port', flag('port') ?? env.PAVE_MOCK_PORT, DEFAULT_BIN_PORT, 0),
    accountsFile: flag('accounts') ?? (env.PAVE_MOCK_ACCOUNTS_FILE !== '' ? env.PAVE_MOCK_ACCOUNTS_FILE : undefined),
    tokenLifetimeSeconds: integer('--token-lifetime-seconds', flag('token-lifetime-seconds') ?? env.PAVE_MOCK_TOKEN_LIFETIME_SECONDS, DEFAULT_TOKEN_LIFETIME_SECONDS, 1),
    clockOffsetMs: integer('--clock-offset-ms', flag('clock-offset-ms') ?? env.PAVE_MOCK_CLOCK_OFFSET_MS, 0, Number.MIN_SAFE_INTEGER),
    timestampFormats: timestampFormats(flag('timestamp-formats') ?? env.PAVE_MOCK_TIMESTAMP_FORMATS),
    faults,
    logger: { level: logLevel }
  }
  if (options.port > 65535) fail(`--port must be at most 65535 (got ${options.port})`)

  let mock
  try {
    mock = await startPaveMock(options)
  } catch (error) {
    if (error instanceof MockAccountsError) fail(error.message)
    process.stderr.write(`pave-mock: cannot start: ${(error as Error).message}\n`)
    process.exit(1)
  }

  const lines = [
    `pave-mock listening on ${mock.url}`,
    ...mock.accounts.map((a) => `  account ${a.username} (API key ${a.apiKey})`)
  ]
  const only = mock.accounts.length === 1 ? mock.accounts[0] : undefined
  if (only?.apiKey === DEMO_ACCOUNT.apiKey && only.username === DEMO_ACCOUNT.username && only.secret === DEMO_ACCOUNT.secret) {
    lines.push(
      '  point pave-proxy at it with the demo credentials (fake, for local use only):',
      `    PAVE_UPSTREAM_URL=${mock.url} PAVE_USERNAME=${DEMO_ACCOUNT.username} PAVE_API_KEY=${DEMO_ACCOUNT.apiKey} PAVE_API_SECRET=${DEMO_ACCOUNT.secret} npx pave-proxy`
    )
  }
  if (mock.timestampFormats.length !== 1 || mock.timestampFormats[0] !== DEFAULT_TIMESTAMP_FORMAT) lines.push(`  accepting API-Timestamp as ${mock.timestampFormats.join(', ')}`)
  if (faults.length > 0) lines.push(`  injecting ${faults.length} fault rule(s)`)
  process.stdout.write(lines.join('\n') + '\n')

  const stopping = mock
  closeWithGrace({ delay: 5_000 }, async ({ err }) => {
    if (err !== undefined) process.stderr.write(`pave-mock: ${err.message}\n`)
    await stopping.close()
  })
}

await main()
