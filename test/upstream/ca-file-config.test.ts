import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { runMain } from '../helpers/spawn.js'

const BASE_ENV = { PAVE_USERNAME: 'u', PAVE_API_KEY: 'key-not-real', PAVE_API_SECRET: 'secret-not-real-123' }
const PEM = readFileSync(new URL('../fixtures/public-ca.pem', import.meta.url), 'utf8')
const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-ca-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function problemsOf (env: Record<string, string>): string[] {
  try {
    loadConfig({ env: { ...BASE_ENV, ...env } })
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems]
    throw error
  }
  return []
}

function file (name: string, text: string): string {
  writeFileSync(join(dir, name), text)
  return join(dir, name)
}

t.test('a readable PEM CA file is accepted, with a bundle of several', async (t) => {
  t.same(problemsOf({ PAVE_UPSTREAM_CA_FILE: file('one.pem', PEM) }), [])
  t.same(problemsOf({ PAVE_UPSTREAM_CA_FILE: file('two.pem', `# corporate roots\n${PEM}\n${PEM}`) }), [])
})

t.test('a CA file that cannot be read names PAVE_UPSTREAM_CA_FILE', async (t) => {
  const missing = join(dir, 'missing.pem')
  t.same(problemsOf({ PAVE_UPSTREAM_CA_FILE: missing }), [`PAVE_UPSTREAM_CA_FILE: cannot read ${missing} (ENOENT)`])
  t.same(problemsOf({ PAVE_UPSTREAM_CA_FILE: dir }), [`PAVE_UPSTREAM_CA_FILE: cannot read ${dir} (EISDIR)`])
})

t.test('a read failure without an error code', async (t) => {
  const path = file('odd.pem', PEM)
  const readFile = (p: string): string => { if (p === path) throw new Error('unreadable'); return readFileSync(p, 'utf8') }
  const error = (() => { try { loadConfig({ env: { ...BASE_ENV, PAVE_UPSTREAM_CA_FILE: path }, readFile }) } catch (e) { return e } })()
  t.ok(error instanceof ConfigError)
  t.same((error as ConfigError).problems, [`PAVE_UPSTREAM_CA_FILE: cannot read ${path} (error)`])
})

t.test('from the YAML file: named upstream.caFile', async (t) => {
  const missing = join(dir, 'missing.pem')
  const config = file('c.yaml', `upstream:\n  caFile: ${missing}\n`)
  t.same(problemsOf({ PAVE_PROXY_CONFIG: config }), [`upstream.caFile (PAVE_UPSTREAM_CA_FILE): cannot read ${missing} (ENOENT)`])
})

t.test('a file without a usable certificate is refused (Node would ignore it silently)', async (t) => {
  for (const [name, text] of [
    ['empty.pem', ''],
    ['key.pem', '-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n'],
    ['broken.pem', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'],
    ['one-broken.pem', `${PEM}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`]
  ] as const) {
    const path = file(name, text)
    t.same(problemsOf({ PAVE_UPSTREAM_CA_FILE: path }), [`PAVE_UPSTREAM_CA_FILE: ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`], name)
  }
})

t.test('pave-proxy --check-config reports it and exits 2', async (t) => {
  const missing = join(dir, 'missing.pem')
  const result = await runMain(['--check-config'], { ...BASE_ENV, PAVE_UPSTREAM_CA_FILE: missing })
  t.equal(result.code, 2)
  t.match(result.stderr, `PAVE_UPSTREAM_CA_FILE: cannot read ${missing} (ENOENT)`)
})
