/**
 * Who may call the proxy: an optional allowlist of CIDR blocks (Node's own
 * `BlockList`) and an optional shared token sent as `Authorization: Bearer …`,
 * compared in constant time and removed before forwarding. `/healthz` and
 * `/readyz` stay open so orchestrators can probe.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { BlockList, isIPv4 } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'
import type { InboundConfig } from '../config/schema.js'
import { parseCidr, type Cidr } from '../config/cidr.js'
import { refusal, type InboundStage } from './pipeline.js'

/** `::ffff:10.1.2.3` (an IPv4 caller on a dual-stack socket) is checked as `10.1.2.3`. */
function plainAddress (address: string): { address: string, family: 'ipv4' | 'ipv6' } {
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return { address: address.slice(7), family: 'ipv4' }
  return { address, family: isIPv4(address) ? 'ipv4' : 'ipv6' }
}

export type InboundVerdict = 'allowed' | 'address-refused' | 'token-refused'

export interface InboundGuard {
  /** Checks a caller; on success with a token configured, removes `authorization` from the headers. */
  check: (remoteAddress: string | undefined, headers: IncomingHttpHeaders) => InboundVerdict
}

/** Paths always open to probes. */
export const OPEN_PATHS = new Set(['/healthz', '/readyz'])

/** `undefined` when no inbound restriction is configured (the common sidecar case). */
export function createInboundGuard (inbound: InboundConfig): InboundGuard | undefined {
  if (inbound.allow === undefined && inbound.token === undefined) return undefined
  let blockList: BlockList | undefined
  if (inbound.allow !== undefined) {
    blockList = new BlockList()
    for (const block of inbound.allow) {
      const cidr = parseCidr(block) as Cidr // validated with the configuration
      blockList.addSubnet(cidr.address, cidr.prefix, cidr.family)
    }
  }
  const expected = inbound.token !== undefined ? digest(inbound.token) : undefined
  return {
    check (remoteAddress, headers) {
      if (blockList !== undefined) {
        if (remoteAddress === undefined) return 'address-refused'
        const caller = plainAddress(remoteAddress)
        if (!blockList.check(caller.address, caller.family)) return 'address-refused'
      }
      if (expected !== undefined) {
        const given = headers.authorization
        const match = typeof given === 'string' ? /^Bearer (.+)$/i.exec(given) : null
        // Both sides hashed first, so the comparison takes the same time whatever the length.
        if (match === null || !timingSafeEqual(digest(match[1] as string), expected)) return 'token-refused'
        delete headers.authorization
      }
      return 'allowed'
    }
  }
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

const FORBIDDEN = refusal('PAVE_PROXY_REQUEST_FORBIDDEN')

/** The guard as a pipeline stage; the probes' paths stay open. */
export function createGuardStage (guard: InboundGuard): InboundStage {
  return {
    name: 'guard',
    check (request) {
      if (OPEN_PATHS.has(request.url)) return undefined
      const remoteAddress = request.raw.socket.remoteAddress
      const verdict = guard.check(remoteAddress, request.headers)
      if (verdict === 'allowed') return undefined
      request.log.warn({ verdict, remoteAddress }, 'caller refused')
      return FORBIDDEN
    }
  }
}
