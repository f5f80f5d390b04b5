/**
 * Starts a real pave-proxy listener on 127.0.0.1:0 in front of a test upstream,
 * capturing every log line so tests can search them.
 */
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildAppOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { ACCOUNT, type TestAccount } from './upstream.js'

export interface TestProxy {
  app: FastifyInstance
  url: string
  port: number
  config: Config
  logs: string[]
  close: () => Promise<void>
}

export function logCapture (): { stream: Writable, lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''))
      callback()
    }
  })
  return { stream, lines }
}

export interface StartProxyOptions extends Omit<BuildAppOptions, 'logStream'> {
  upstreamUrl: string
  account?: TestAccount
  env?: Record<string, string>
  configFile?: string
}

export function testConfig (options: { upstreamUrl: string, account?: TestAccount, env?: Record<string, string>, configFile?: string }): Config {
  const account = options.account ?? ACCOUNT
  return loadConfig({
    env: {
      PAVE_USERNAME: account.username,
      PAVE_API_KEY: account.apiKey,
      PAVE_API_SECRET: account.secret,
      PAVE_UPSTREAM_URL: options.upstreamUrl,
      LOG_LEVEL: 'trace',
      PAVE_PROXY_SHUTDOWN_DELAY_MS: '0',
      ...(options.configFile !== undefined ? { PAVE_PROXY_CONFIG: options.configFile } : {}),
      ...options.env
    },
    argv: []
  })
}

export async function startProxy (options: StartProxyOptions): Promise<TestProxy> {
  const config = testConfig(options)
  const { stream, lines } = logCapture()
  const { upstreamUrl: _u, account: _a, env: _e, configFile: _c, ...buildOptions } = options
  const app = await buildApp(config, { ...buildOptions, logStream: stream })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  return { app, url: `http://127.0.0.1:${port}`, port, config, logs: lines, close: async () => { await app.close() } }
}
