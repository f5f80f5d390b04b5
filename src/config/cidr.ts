/**
 * CIDR blocks as the configuration writes them. Parsed here, with the settings,
 * so that validating a configuration needs nothing of the request stages.
 */
import { isIPv4, isIPv6 } from 'node:net'

export interface Cidr { address: string, prefix: number, family: 'ipv4' | 'ipv6' }

/** Parses `10.0.0.0/8`, `::1/128`, or a bare address (a /32 or /128). */
export function parseCidr (block: string): Cidr | undefined {
  const [address = '', prefixText, extra] = block.split('/')
  if (extra !== undefined) return undefined
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined
  if (family === undefined) return undefined
  const max = family === 'ipv4' ? 32 : 128
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN
  if (!(prefix >= 0 && prefix <= max)) return undefined
  return { address, prefix, family }
}
