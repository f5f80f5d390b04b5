import t from 'tap'
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadConfig, defaultSettings, SETTING_SOURCES } from '../../src/config/load.js'

const examplePath = new URL('../../config/pave-proxy.example.yaml', import.meta.url)
const text = readFileSync(examplePath, 'utf8')

t.test('the example file loads, and its values are the defaults', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-example-'))
  const secret = join(dir, 'secret')
  writeFileSync(secret, 'example-secret-not-real\n')
  const config = loadConfig({ env: { PAVE_PROXY_CONFIG: examplePath.pathname }, readFile: (path) => path.startsWith('/run/secrets/') ? readFileSync(secret, 'utf8') : readFileSync(path, 'utf8') })
  const defaults = defaultSettings()
  for (const key of ['host', 'port', 'logLevel', 'bodyLimit', 'upstream', 'signing', 'shutdown', 'inbound', 'capacity', 'tracing'] as const) {
    t.same(config[key], defaults[key], `${key} as documented`)
  }
  t.same(config.accounts.map((a) => [a.name, a.prefix]), [['default', '/'], ['test', '/test']])
})

t.test('every environment name appears in the example file', async (t) => {
  for (const source of SETTING_SOURCES) t.match(text, source.env, source.env)
  for (const name of ['PAVE_USERNAME', 'PAVE_API_KEY', 'PAVE_API_SECRET', 'PAVE_API_SECRET_FILE', 'PAVE_PROXY_CONFIG', 'HTTPS_PROXY', 'NO_PROXY']) t.match(text, name)
  t.type(parse(text), 'object')
})
