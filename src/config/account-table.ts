/**
 * The live set of accounts, by name. A reload swaps account objects whole, so a
 * request signs entirely with the old credentials or entirely with the new.
 */
import type { AccountConfig } from './schema.js'

export class AccountTable {
  #byName: Map<string, AccountConfig>

  constructor (accounts: readonly AccountConfig[]) {
    this.#byName = new Map(accounts.map((a) => [a.name, a]))
  }

  get (name: string): AccountConfig | undefined {
    return this.#byName.get(name)
  }

  all (): AccountConfig[] {
    return [...this.#byName.values()]
  }

  /** Replaces every account; returns the names whose credentials changed. */
  replace (accounts: readonly AccountConfig[]): string[] {
    const changed = accounts
      .filter((next) => {
        const current = this.#byName.get(next.name)
        return current === undefined || current.username !== next.username || current.apiKey !== next.apiKey || current.apiSecret !== next.apiSecret
      })
      .map((a) => a.name)
    this.#byName = new Map(accounts.map((a) => [a.name, a]))
    return changed
  }
}
