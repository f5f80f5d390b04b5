/**
 * The accounts pave-mock knows: from options, or from a small YAML or JSON file.
 *
 * A file is either a list of accounts or an object with an `accounts` list; each
 * account has `username`, `apiKey` and `secret`:
 *
 * ```yaml
 * accounts:
 *   - { username: demo-user, apiKey: demo-key-not-real, secret: demo-secret-not-real }
 * ```
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import type { PaveCredentials } from '../signing/pave-token.js'

/** One account of the mock: what PAVE would have issued to a customer. */
export type MockAccount = PaveCredentials

/** The account the mock knows when given none. Obviously fake, published in the README. */
export const DEMO_ACCOUNT: MockAccount = Object.freeze({
  username: 'demo-user',
  apiKey: 'demo-key-not-real',
  secret: 'demo-secret-not-real'
})

/** Thrown when accounts are unusable; `problems` lists every one found. */
export class MockAccountsError extends Error {
  readonly problems: readonly string[]
  constructor (problems: readonly string[]) {
    super(`invalid pave-mock accounts:\n  - ${problems.join('\n  - ')}`)
    this.name = 'MockAccountsError'
    this.problems = problems
  }
}

const FIELDS = ['username', 'apiKey', 'secret'] as const

/** Checks a list of accounts (from options or a parsed file) and returns a frozen copy. */
export function validateAccounts (value: unknown, source = 'accounts'): readonly MockAccount[] {
  const list = isRecord(value) && !Array.isArray(value) && 'accounts' in value ? value.accounts : value
  if (!Array.isArray(list)) throw new MockAccountsError([`${source}: expected a list of accounts (or an object with an "accounts" list)`])
  const problems: string[] = []
  if (list.length === 0) problems.push(`${source}: at least one account is required`)
  const seenKeys = new Set<string>()
  const accounts: MockAccount[] = []
  list.forEach((entry: unknown, index) => {
    const label = `${source}[${index}]`
    if (!isRecord(entry)) {
      problems.push(`${label}: expected an object with username, apiKey and secret`)
      return
    }
    const missing = FIELDS.filter((field) => typeof entry[field] !== 'string' || entry[field] === '')
    if (missing.length > 0) {
      problems.push(`${label}: ${missing.join(', ')} must be a non-empty string`)
      return
    }
    const account = { username: entry.username as string, apiKey: entry.apiKey as string, secret: entry.secret as string }
    if (seenKeys.has(account.apiKey)) problems.push(`${label}: API key ${account.apiKey} is used by another account`)
    seenKeys.add(account.apiKey)
    accounts.push(Object.freeze(account))
  })
  if (problems.length > 0) throw new MockAccountsError(problems)
  return Object.freeze(accounts)
}

/** Reads accounts from a YAML or JSON file (JSON is YAML). */
export function loadAccountsFile (path: string, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): readonly MockAccount[] {
  let text: string
  try {
    text = readFile(path)
  } catch (error) {
    throw new MockAccountsError([`${path}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`])
  }
  let parsed: unknown
  try {
    parsed = parseYaml(text)
  } catch (error) {
    throw new MockAccountsError([`${path}: not valid YAML or JSON (${String((error as Error).message.split('\n')[0])})`])
  }
  return validateAccounts(parsed, path)
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}
