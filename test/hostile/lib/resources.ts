/** What the process holds: open file descriptors, active handles, heap after a full collection. */
import { readdirSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
const collect = runInNewContext('gc') as () => void

export interface Resources {
  fds: number
  sockets: number
  handles: number
  heapUsed: number
  rss: number
}

export async function settle (): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    collect()
  }
}

export async function measure (): Promise<Resources> {
  await settle()
  const active = process.getActiveResourcesInfo()
  return {
    fds: readdirSync('/proc/self/fd').length,
    sockets: active.filter((r) => r === 'TCPSocketWrap').length,
    handles: active.length,
    heapUsed: process.memoryUsage().heapUsed,
    rss: process.memoryUsage().rss
  }
}

export const MiB = 1024 * 1024
