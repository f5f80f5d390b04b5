/**
 * Fetching a JWT caller's `jwksUrl`: the one origin besides PAVE the proxy may contact,
 * and only because the operator named it. HTTPS with the certificate verified (the
 * upstream's private CA, when set, is trusted too), through the same egress proxy
 * settings as PAVE, no redirects, a bounded answer.
 */
import type { Dispatcher } from 'undici'
import type { UpstreamConfig } from '../config/schema.js'
import { createDispatcher } from './dispatcher.js'

/** Largest JWKS document accepted. */
export const MAX_JWKS_BYTES = 1_048_576

export interface JwksFetcher {
  /** Resolves with the parsed JSON; rejects with a message that names no key and no address. */
  readonly fetch: (url: string) => Promise<unknown>
  readonly close: () => Promise<void>
}

class JwksFetchError extends Error {}

export function createJwksFetcher (upstream: UpstreamConfig): JwksFetcher {
  let dispatcher: Dispatcher | undefined
  const get = async (url: string): Promise<unknown> => {
    dispatcher ??= createDispatcher({ ...upstream, connections: 2 })
    const parsed = new URL(url)
    const { statusCode, body } = await dispatcher.request({ origin: parsed.origin, path: parsed.pathname + parsed.search, method: 'GET', headers: { accept: 'application/json' } })
    if (statusCode !== 200) {
      await body.dump()
      throw new JwksFetchError(`the JWKS URL answered ${statusCode}`)
    }
    let size = 0
    const chunks: Buffer[] = []
    for await (const chunk of body) {
      size += (chunk as Buffer).length
      if (size > MAX_JWKS_BYTES) {
        body.destroy()
        throw new JwksFetchError(`the JWKS is larger than ${MAX_JWKS_BYTES} bytes`)
      }
      chunks.push(chunk as Buffer)
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
    } catch {
      throw new JwksFetchError('the JWKS URL did not answer JSON')
    }
  }
  return {
    async fetch (url) {
      try {
        return await get(url)
      } catch (error) {
        if (error instanceof JwksFetchError) throw error
        // By code only: a network error's message can name internal addresses.
        throw new Error(`cannot fetch the JWKS URL (${String((error as NodeJS.ErrnoException).code)})`)
      }
    },
    async close () {
      if (dispatcher !== undefined) await dispatcher.close()
    }
  }
}
