/**
 * Who may call the proxy: an optional allowlist of CIDR blocks (Node's own
 * `BlockList`) and an optional shared token sent as `Authorization: Bearer …`,
 * compared in constant time and removed before forwarding. `/healthz` and
 * `/readyz` stay open so orchestrators can probe.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { BlockList } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'
import type { InboundConfig } from '../config/schema.js'
import { blockListOf, inBlockList } from '../config/cidr.js'
import { refusal, type InboundStage } from './pipeline.js'

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
  const blockList: BlockList | undefined = inbound.allow !== undefined ? blockListOf(inbound.allow) : undefined
  const expected = inbound.token !== undefined ? digest(inbound.token) : undefined
  return {
    check (remoteAddress, headers) {
      if (blockList !== undefined && !inBlockList(blockList, remoteAddress)) return 'address-refused'
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
