/**
 * A TCP relay that makes loopback look like a long link: every byte it carries is
 * held `delayMs` in each direction. With `emulateConnect`, a new connection also
 * pays the round trip of a TCP handshake (the kernel completed the real one at
 * once): the first bytes the client sends leave no earlier than 2 × delayMs after
 * it connected, which is when a SYN/SYN-ACK exchange over the same link would have
 * let it send them. Order is kept with one FIFO per direction.
 *
 *   node relay.js '{"port":1234,"targetPort":5678,"delayMs":20,"emulateConnect":true}'
 */
import { connect, createServer, type Socket } from 'node:net'

interface RelayOptions {
  port: number
  targetPort: number
  delayMs: number
  emulateConnect: boolean
}

const options = JSON.parse(process.argv[2] ?? '{}') as RelayOptions

/** Writes what arrives on `from` to `to`, each chunk no earlier than max(arrival, notBefore) + delay. */
function delayedPipe (from: Socket, to: Socket, delayMs: number, notBefore: number): void {
  const queue: Array<{ at: number, data: Buffer | null }> = []
  let timer: NodeJS.Timeout | undefined
  const flush = (): void => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && (queue[0] as { at: number }).at <= now + 0.5) {
      const { data } = queue.shift() as { at: number, data: Buffer | null }
      if (data === null) to.end()
      else if (!to.destroyed) to.write(data)
    }
    schedule()
  }
  const schedule = (): void => {
    if (timer !== undefined || queue.length === 0) return
    timer = setTimeout(flush, Math.max(0, (queue[0] as { at: number }).at - performance.now()))
  }
  const push = (data: Buffer | null): void => {
    queue.push({ at: Math.max(performance.now(), notBefore) + delayMs, data })
    schedule()
  }
  from.on('data', (data: Buffer) => push(data))
  from.on('end', () => push(null))
}

// Half-open on both sides: an end travels through the delay queue like data.
const server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
  const acceptedAt = performance.now()
  const upstream = connect({ port: options.targetPort, host: '127.0.0.1', noDelay: true, allowHalfOpen: true })
  const fail = (): void => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', fail)
  upstream.on('error', fail)
  // Whatever is still queued for the other side gets the time to be delivered.
  const linger = 2 * options.delayMs + 100
  client.on('close', () => setTimeout(() => upstream.destroy(), linger))
  upstream.on('close', () => setTimeout(() => client.destroy(), linger))
  delayedPipe(client, upstream, options.delayMs, options.emulateConnect ? acceptedAt + 2 * options.delayMs : 0)
  delayedPipe(upstream, client, options.delayMs, 0)
})
server.listen(options.port, '127.0.0.1')
process.on('SIGTERM', () => {
  server.close()
  process.exit(0)
})
