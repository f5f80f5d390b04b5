import t from 'tap'
import { readFileSync } from 'node:fs'
import { runMain } from '../helpers/spawn.js'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

t.test('--help lists the commands, flags and the environment', async (t) => {
  const result = await runMain(['--help'])
  t.equal(result.code, 0)
  for (const word of ['Usage: pave-proxy', '--config FILE', '--check-config', '--port VALUE', 'PAVE_API_SECRET_FILE', 'check']) {
    t.match(result.stdout, word)
  }
})

t.test('--version prints the package version', async (t) => {
  const result = await runMain(['--version'])
  t.equal(result.code, 0)
  t.equal(result.stdout.trim(), pkg.version)
})

t.test('an unknown flag is a usage error, exit 2', async (t) => {
  const result = await runMain(['--colour', 'blue'])
  t.equal(result.code, 2)
  t.match(result.stderr, /Unknown option '--colour'/)
  t.match(result.stderr, /Usage: pave-proxy/)
  const command = await runMain(['frobnicate'])
  t.equal(command.code, 2)
  t.match(command.stderr, 'unknown command "frobnicate"')
  const extra = await runMain(['serve', 'extra'])
  t.equal(extra.code, 2)
  t.match(extra.stderr, 'unexpected argument "extra"')
})

t.test('missing and invalid settings: exit 2, each named, no secret printed', async (t) => {
  const result = await runMain([], { PAVE_API_SECRET: 'printed-secret-would-be-bad', PORT: '99999', PAVE_UPSTREAM_TIMEOUT_MS: 'soon' })
  t.equal(result.code, 2)
  t.match(result.stderr, 'PAVE_USERNAME is required')
  t.match(result.stderr, 'PAVE_API_KEY is required')
  t.match(result.stderr, 'PORT must be <= 65535')
  t.match(result.stderr, 'PAVE_UPSTREAM_TIMEOUT_MS must be integer')
  t.notMatch(result.stderr + result.stdout, 'printed-secret-would-be-bad')
})

t.test('--check-config validates and exits', async (t) => {
  const ok = await runMain(['--check-config'], { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 'secret-not-printed' })
  t.equal(ok.code, 0)
  t.match(ok.stdout, 'configuration is valid: default (/) → https://openapi.paveapi.com')
  t.notMatch(ok.stdout, 'secret-not-printed')
  const bad = await runMain(['--check-config', '--port', 'x'], { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's' })
  t.equal(bad.code, 2)
  t.match(bad.stderr, '--port must be integer')
})
