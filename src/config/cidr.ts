/**
 * CIDR blocks as the configuration writes them. Parsed here, with the settings,
 * so that validating a configuration needs nothing of the request stages.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'

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

/** A `BlockList` of blocks already validated with the configuration. */
export function blockListOf (blocks: readonly string[]): BlockList {
  const list = new BlockList()
  for (const block of blocks) {
    const cidr = parseCidr(block) as Cidr
    list.addSubnet(cidr.address, cidr.prefix, cidr.family)
  }
  return list
}

/** Whether an address is inside the list; `::ffff:10.1.2.3` (an IPv4 caller on a dual-stack socket) is checked as `10.1.2.3`. */
export function inBlockList (list: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return list.check(address.slice(7), 'ipv4')
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')
}
