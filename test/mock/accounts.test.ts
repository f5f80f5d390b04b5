/** pave-mock's accounts: from options, a YAML or JSON file, or the demo account; checked once. */
import t from 'tap'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { DEMO_ACCOUNT, MockAccountsError, loadAccountsFile, validateAccounts } from '../../src/mock/accounts.js'
import { startPaveMock } from '../../src/mock/server.js'
import { ALICE, BOB, call } from './client.js'

t.test('with no accounts given, the mock knows the demo account', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  t.same(mock.accounts, [DEMO_ACCOUNT])
  t.same(DEMO_ACCOUNT, { username: 'demo-user', apiKey: 'demo-key-not-real', secret: 'demo-secret-not-real' })
  t.equal((await call(mock, 'POST', '/v1/sessions', { as: DEMO_ACCOUNT })).status, 200)
})

t.test('accounts from a YAML file, a JSON file, and options together', async (t) => {
  const dir = t.testdir({
    'accounts.yaml': 'accounts:\n  - username: bob-user\n    apiKey: bob-key-not-real\n    secret: bob-secret-not-real\n',
    'accounts.json': JSON.stringify([{ username: 'carol-user', apiKey: 'carol-key-not-real', secret: 'carol-secret-not-real' }])
  })
  t.same(loadAccountsFile(join(dir, 'accounts.yaml')), [BOB])
  t.same(loadAccountsFile(join(dir, 'accounts.json')).map((a) => a.username), ['carol-user'])

  const mock = await startPaveMock({ accounts: [ALICE], accountsFile: join(dir, 'accounts.yaml') })
  t.teardown(mock.close)
  t.same(mock.accounts.map((a) => a.username), ['alice-user', 'bob-user'])
  t.equal((await call(mock, 'GET', '/v1/callbacks', { as: BOB })).status, 200)
  t.equal((await call(mock, 'GET', '/v1/callbacks', { as: DEMO_ACCOUNT })).status, 403, 'the demo account only when none is given')
})

t.test('every problem is reported at once', async (t) => {
  t.same(problemsOf(() => validateAccounts([
    { username: 'a', apiKey: 'k', secret: 's' },
    { username: 'b', apiKey: 'k', secret: 's' },
    { username: '', apiKey: 'k2' },
    'text'
  ])), [
    'accounts[1]: API key k is used by another account',
    'accounts[2]: username, secret must be a non-empty string',
    'accounts[3]: expected an object with username, apiKey and secret'
  ])
  t.same(problemsOf(() => validateAccounts([])), ['accounts: at least one account is required'])
  t.match(problemsOf(() => validateAccounts({ users: [] })), [/expected a list of accounts/])
  t.throws(() => validateAccounts(null), MockAccountsError)
  t.same(validateAccounts({ accounts: [ALICE] }), [ALICE])
  t.ok(Object.isFrozen(validateAccounts([ALICE])[0]), 'frozen')
})

t.test('file problems name the file', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'accounts: [\n', 'empty.yaml': '' })
  t.match(problemsOf(() => loadAccountsFile(join(dir, 'missing.yaml'))), [/missing\.yaml: cannot read the file \(ENOENT\)/])
  t.match(problemsOf(() => loadAccountsFile(join(dir, 'bad.yaml'))), [/bad\.yaml: not valid YAML or JSON/])
  t.match(problemsOf(() => loadAccountsFile(join(dir, 'empty.yaml'))), [/empty\.yaml: expected a list of accounts/])
  t.same(problemsOf(() => loadAccountsFile('x.yaml', () => { throw new Error('no') })), ['x.yaml: cannot read the file (error)'])
  const file = join(dir, 'dup.json')
  writeFileSync(file, JSON.stringify([ALICE, ALICE]))
  const error = await startPaveMock({ accountsFile: file }).then(() => undefined, (e: unknown) => e)
  t.type(error, MockAccountsError)
  t.match((error as MockAccountsError).problems, [/API key alice-key-not-real is used by another account/])
})

/** The problems a MockAccountsError lists (none when nothing is thrown). */
function problemsOf (fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (error) {
    if (error instanceof MockAccountsError) return error.problems
    throw error
  }
  return []
}
