/**
 * pave-proxy for the price list: `dist/app.js`'s `buildApp` with stages left out,
 * configured from the environment exactly as `dist/main.js` is (same loader, same
 * asynchronous log destination on stdout), listening until SIGTERM. Only what the
 * benchmarks need: no reloads, no drain delay.
 *
 *   node pave-variant.js '{"dist":"/repo/dist","leaveOut":["metrics","admission"]}'
 */
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import { pino } from 'pino'

interface VariantOptions {
  /** The built pave-proxy (`dist/`). */
  dist: string
  /** Passed to buildApp as `leaveOut`. */
  leaveOut: string[]
}

const options = JSON.parse(process.argv[2] ?? '{}') as VariantOptions
const load = (file: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(options.dist, file)).href) as Promise<Record<string, unknown>>
const { loadConfig } = await load('config/load.js') as { loadConfig: (input: { env: NodeJS.ProcessEnv }) => { host: string, port: number } }
const { buildApp } = await load('app.js') as {
  buildApp: (config: unknown, options: unknown) => Promise<{ listen: (o: { host: string, port: number }) => Promise<string>, close: () => Promise<void>, server: { closeAllConnections: () => void } }>
}
const config = loadConfig({ env: process.env })
const logStream = pino.destination({ dest: 1, sync: false })
const app = await buildApp(config, { logStream, leaveOut: options.leaveOut })
await app.listen({ host: config.host, port: config.port })
process.once('SIGTERM', () => {
  app.server.closeAllConnections()
  void app.close().finally(() => {
    logStream.flushSync()
    process.exit(0)
  })
})
