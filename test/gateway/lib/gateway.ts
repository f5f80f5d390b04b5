/**
 * A gateway under test: a signature-checking upstream, and a real proxy listener
 * configured with `callers:` from a YAML file in a fresh directory, where the test
 * writes token and JWKS files.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request, type Dispatcher } from 'undici'
import { startProxy, type StartProxyOptions, type TestProxy } from '../../helpers/proxy.js'
import { startUpstream, type TestAccount, type TestUpstream } from '../../helpers/upstream.js'
import { startTlsProxy } from '../../helpers/tls-proxy.js'
import type { ClientCa } from '../../fixtures/client-ca.js'
import type { ClientAuth } from '../../../src/config/schema.js'

/** A second account, served at /test. */
export const TEST_ACCOUNT: TestAccount = { username: 'gw-test-user', apiKey: 'gw-test-key-not-real', secret: 'gw-test-secret-not-real-5555' }

export const INTAKE_TOKEN = 'intake-token-not-real-0123456789'
export const REPORTING_TOKEN = 'reporting-token-not-real-abcdef'

export interface Gateway {
  dir: string
  upstream: TestUpstream
  proxy: TestProxy
  /** A file in the gateway's directory. */
  file: (name: string) => string
  /** An answer's status, headers and body text. */
  call: (path: string, options?: { method?: Dispatcher.HttpMethod, headers?: Record<string, string>, body?: string, token?: string, dispatcher?: Dispatcher }) => Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: string }>
}

export interface GatewayOptions extends Partial<Omit<StartProxyOptions, 'upstreamUrl' | 'configFile'>> {
  /** Files to write first, by name (tokens, JWKS…). */
  files?: Record<string, string>
  /** The YAML lines after `accounts:` (callers, metrics, audit…); `$DIR` is the gateway's directory. */
  yaml: string[]
  /** TLS on the listener with the fixture CA as the client CA. */
  tls?: { pki: ClientCa, clientAuth: ClientAuth }
}

/** The second account and the YAML lines that set it up. */
export function accountsYaml (): string[] {
  return [
    'accounts:',
    `  - { name: test, prefix: /test, username: ${TEST_ACCOUNT.username}, apiKey: ${TEST_ACCOUNT.apiKey}, apiSecret: ${TEST_ACCOUNT.secret} }`
  ]
}

export async function startGateway (t: Test, options: GatewayOptions): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-gateway-'))
  const file = (name: string): string => join(dir, name)
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(file(name), content)
  const configFile = file('pave-proxy.yaml')
  writeFileSync(configFile, [...accountsYaml(), ...options.yaml].join('\n').replaceAll('$DIR', dir) + '\n')
  const upstream = await startUpstream({ accounts: [(await import('../../helpers/upstream.js')).ACCOUNT, TEST_ACCOUNT] })
  t.teardown(async () => { await upstream.close() })
  const { files: _f, yaml: _y, tls, ...rest } = options
  const proxy = tls !== undefined
    ? await startTlsProxy({ ...rest, upstreamUrl: upstream.url, configFile, pki: tls.pki, clientAuth: tls.clientAuth })
    : await startProxy({ ...rest, upstreamUrl: upstream.url, configFile })
  t.teardown(async () => { await proxy.close() })
  return {
    dir,
    upstream,
    proxy,
    file,
    async call (path, callOptions = {}) {
      const headers = { ...callOptions.headers }
      if (callOptions.token !== undefined) headers.authorization = `Bearer ${callOptions.token}`
      const res = await request(`${proxy.url}${path}`, { method: callOptions.method ?? 'GET', headers, body: callOptions.body, ...(callOptions.dispatcher !== undefined ? { dispatcher: callOptions.dispatcher } : {}) })
      return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
    }
  }
}

/** The access and audit lines a proxy wrote, parsed. */
export function linesOf (proxy: TestProxy): Array<Record<string, unknown>> {
  return proxy.logs.map((line) => JSON.parse(line) as Record<string, unknown>)
}

export async function settle (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 20))
}
