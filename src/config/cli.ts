/**
 * The command line of `pave-proxy`: a command and its flags, parsed with
 * `node:util`'s parseArgs. Unknown flags are reported, not ignored.
 */
import { parseArgs } from 'node:util'
import { SETTING_SOURCES } from './schema.js'

export type Command = 'serve' | 'check'

export interface CommandLine {
  readonly command: Command
  /** Flag values by flag name (without `--`); settings flags and `config`. */
  readonly flags: Readonly<Record<string, string | undefined>>
  readonly help: boolean
  readonly version: boolean
  /** `--check-config`: validate the configuration and exit. */
  readonly checkConfig: boolean
}

const SETTING_FLAGS = SETTING_SOURCES.filter((s) => s.flag !== undefined)

export const USAGE = `Usage: pave-proxy [serve|check] [options]

A signing sidecar for the PAVE API: plain HTTP in, signed HTTPS out.

Commands:
  serve (default)          run the proxy
  check                    validate the configuration, then call PAVE once per
                           account (GET /v1/callbacks) and report the result

Options:
  --config FILE            YAML configuration file (also PAVE_PROXY_CONFIG)
${SETTING_FLAGS.map((s) => `  --${`${s.flag as string} VALUE`.padEnd(23)}same as ${s.env}`).join('\n')}
  --check-config           validate the configuration and exit (0 valid, 2 invalid)
  --help                   print this help and exit
  --version                print the version and exit

The default account comes from PAVE_USERNAME, PAVE_API_KEY and PAVE_API_SECRET
(or PAVE_API_SECRET_FILE). Precedence: defaults < config file < environment < flags.`

/** Thrown for an unknown flag, a missing value or an unknown command. */
export class UsageError extends Error {
  override name = 'UsageError'
}

export function parseCommandLine (argv: readonly string[]): CommandLine {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    config: { type: 'string' },
    'check-config': { type: 'boolean' },
    help: { type: 'boolean' },
    version: { type: 'boolean' }
  }
  for (const source of SETTING_FLAGS) options[source.flag as string] = { type: 'string' }
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const [command = 'serve', ...rest] = parsed.positionals
  if (command !== 'serve' && command !== 'check') throw new UsageError(`unknown command "${command}"`)
  if (rest.length > 0) throw new UsageError(`unexpected argument "${String(rest[0])}"`)
  const flags: Record<string, string | undefined> = {}
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === 'string') flags[name] = value
  }
  return {
    command,
    flags,
    help: parsed.values.help === true,
    version: parsed.values.version === true,
    checkConfig: parsed.values['check-config'] === true
  }
}
