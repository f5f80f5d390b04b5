import t from 'tap'
import { readFileSync } from 'node:fs'
import * as api from '../src/index.js'

t.test('the package entry point exports the programmatic API', async (t) => {
  t.same(Object.keys(api).sort(), ['ConfigError', 'ENVIRONMENT_VARIABLES', 'ERRORS', 'buildApp', 'computeToken', 'formatTimestamp', 'loadConfig', 'parseTimestamp'])
  t.equal(api.computeToken({ username: 'acme', apiKey: 'abcd1234', secret: 's3cr3t' }, '2023-02-11T12:00:00Z'), '3831a28fd9bb537826cee158a2fb45722de6992c95bfa83529e87e20b53a5fbb')
})

t.test('package.json maps the entry points to built files', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, unknown>, bin: Record<string, string> }
  t.same(pkg.exports['.'], { types: './dist/index.d.ts', default: './dist/index.js' })
  t.same(pkg.exports['./mock'], { types: './dist/mock/server.d.ts', default: './dist/mock/server.js' })
  t.same(pkg.bin, { 'pave-proxy': 'dist/main.js', 'pave-mock': 'dist/mock/main.js' })
})
