/**
 * `pave-proxy check`: calls PAVE once per account with a harmless read and
 * reports whether the credentials are accepted.
 */
import type { Writable } from 'node:stream'
import type { Config } from './config-schema.js'

export async function runCheck (_config: Config, _out: Writable): Promise<number> {
  throw new Error('pave-proxy check is not implemented yet')
}
