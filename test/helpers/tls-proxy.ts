/**
 * A real pave-proxy listener with TLS on (127.0.0.1:0), in front of a test upstream,
 * with the listener test CA of `test/fixtures/client-ca.ts`; and clients for it.
 */
import { Agent } from 'undici'
import type { ClientAuth } from '../../src/config/schema.js'
import type { ClientCa, PemPair } from '../fixtures/client-ca.js'
import { startProxy, type StartProxyOptions, type TestProxy } from './proxy.js'

export interface TlsProxyOptions extends StartProxyOptions {
  readonly pki: ClientCa
  /** With a client CA (the fixture's CA), how client certificates are asked for. Default: no client CA. */
  readonly clientAuth?: ClientAuth
}

/** `url` is the `https://127.0.0.1:port` origin. */
export async function startTlsProxy (options: TlsProxyOptions): Promise<TestProxy> {
  const { pki, clientAuth, env, ...rest } = options
  const proxy = await startProxy({
    ...rest,
    env: {
      PAVE_PROXY_TLS_CERT_FILE: pki.server.certFile,
      PAVE_PROXY_TLS_KEY_FILE: pki.server.keyFile,
      ...(clientAuth !== undefined ? { PAVE_PROXY_TLS_CLIENT_CA_FILE: pki.caFile, PAVE_PROXY_TLS_CLIENT_AUTH: clientAuth } : {}),
      ...env
    }
  })
  return { ...proxy, url: `https://127.0.0.1:${proxy.port}` }
}

/** An undici Agent that trusts the fixture's CA and presents `client`'s certificate, if given. */
export function tlsAgent (pki: ClientCa, client?: PemPair, options: Agent.Options = {}): Agent {
  return new Agent({ ...options, connect: { ca: pki.caPem, ...(client !== undefined ? { cert: client.cert, key: client.key } : {}) } })
}
