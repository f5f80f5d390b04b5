/** A proxy in front of a test upstream with accounts that carry limits, configured through a real file. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startProxy, type TestProxy } from '../../helpers/proxy.js'
import { ACCOUNT, type TestAccount } from '../../helpers/upstream.js'

export interface LimitedAccount {
  name: string
  prefix: string
  limit?: { requestsPerSecond: number, burst?: number }
}

/** Writes a configuration file holding these accounts (all signing as {@link ACCOUNT}) and `limits`. */
export function writeLimitsConfig (accounts: LimitedAccount[], limits: Record<string, unknown> = {}, account: TestAccount = ACCOUNT): { file: string, cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pave-limits-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, JSON.stringify({
    limits,
    accounts: accounts.map((a) => ({ ...a, username: account.username, apiKey: account.apiKey, apiSecret: account.secret }))
  }))
  return { file, cleanup: () => { rmSync(dir, { recursive: true, force: true }) } }
}

export async function startLimitedProxy (upstreamUrl: string, accounts: LimitedAccount[], limits: Record<string, unknown> = {}): Promise<TestProxy> {
  const { file, cleanup } = writeLimitsConfig(accounts, limits)
  try {
    // The file's accounts only: no account from the environment.
    return await startProxy({ upstreamUrl, configFile: file, env: { PAVE_USERNAME: '', PAVE_API_KEY: '', PAVE_API_SECRET: '' } })
  } finally {
    cleanup()
  }
}

export interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string, ms: number }

export async function get (url: string): Promise<Answer> {
  const started = performance.now()
  const response = await request(url)
  const body = await response.body.text()
  return { status: response.statusCode, headers: response.headers, body, ms: performance.now() - started }
}

/** `count` requests at once. */
export async function burst (url: string, count: number): Promise<Answer[]> {
  return await Promise.all(Array.from({ length: count }, async () => await get(url)))
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export function statuses (answers: Answer[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1
  return counts
}
