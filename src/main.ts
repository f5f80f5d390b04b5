#!/usr/bin/env node
/**
 * The pave-proxy process: command line, configuration, listen, signals, exit codes.
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
import { readFileSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config/load.js'
import { USAGE, UsageError, parseCommandLine, type CommandLine } from './config/cli.js'
import { serializeError } from './observe/logging.js'
import type { Config } from './config/schema.js'
import { watchFiles, type Watcher } from './config/watch.js'
import { TRACE_SHUTDOWN_TIMEOUT_MS } from './observe/tracing.js'

const EXIT_USAGE = 2

function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

function fail (message: string): never {
  process.stderr.write(`pave-proxy: ${message}\n`)
  process.exit(EXIT_USAGE)
}

async function main (): Promise<void> {
  let commandLine: CommandLine
  try {
    commandLine = parseCommandLine(process.argv.slice(2))
  } catch (error) {
    if (error instanceof UsageError) fail(`${error.message}\n\n${USAGE}`)
    throw error
  }
  if (commandLine.help) {
    process.stdout.write(USAGE + '\n')
    return
  }
  if (commandLine.version) {
    process.stdout.write(version() + '\n')
    return
  }

  let config: Config
  try {
    config = loadConfig({ env: process.env, argv: commandLine })
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message)
    throw error
  }
  if (commandLine.checkConfig) {
    const listener = config.tls !== undefined ? `; listener TLS on${config.tls.clientAuth !== undefined ? ` (client certificates: ${config.tls.clientAuth})` : ''}` : ''
    process.stdout.write(`configuration is valid: ${config.accounts.map((a) => `${a.name} (${a.prefix})`).join(', ')} → ${config.upstream.url}${listener}\n`)
    return
  }
  if (commandLine.command === 'check') {
    const { runCheck } = await import('./check.js')
    process.exitCode = await runCheck(config, process.stdout)
    return
  }
  await serve(config, commandLine)
}

/** Files whose change triggers a reload: the config file and every secret file. */
function watchedFiles (config: Config): string[] {
  const files = config.accounts.flatMap((a) => (a.apiSecretFile !== undefined ? [a.apiSecretFile] : []))
  if (config.configFile !== undefined) files.push(config.configFile)
  if (config.inbound.tokenFile !== undefined) files.push(config.inbound.tokenFile)
  for (const caller of config.callers ?? []) {
    if (caller.tokenFile !== undefined) files.push(caller.tokenFile)
    if (caller.jwt?.jwksFile !== undefined) files.push(caller.jwt.jwksFile)
  }
  if (config.tls !== undefined) files.push(config.tls.certFile, config.tls.keyFile, ...(config.tls.clientCaFile !== undefined ? [config.tls.clientCaFile] : []))
  return files
}

async function serve (config: Config, commandLine: CommandLine): Promise<void> {
  // Asynchronous log writes: under load, lines written while a write is in flight go out
  // together in the next one instead of one blocking write per request. Flushed at exit.
  const logStream = pino.destination({ dest: 1, sync: false })
  process.on('exit', () => {
    try {
      logStream.flushSync()
    } catch {
      // nothing more can be done for the log at exit
    }
  })
  const app = await buildApp(config, { logStream })
  const log = app.log

  // Reload on SIGHUP and when a watched file changes: validate first, keep the old on failure.
  let watcher: Watcher | undefined
  const rewatch = (): void => {
    watcher?.close()
    const files = watchedFiles(app.currentConfig())
    watcher = files.length > 0 ? watchFiles(files, reload, (error) => log.warn({ err: error }, 'cannot watch a configuration file; SIGHUP still reloads')) : undefined
  }
  const reload = (): void => {
    let next: Config
    try {
      next = loadConfig({ env: process.env, argv: commandLine })
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      app.metrics.reloads.inc({ result: 'rejected' })
      if (error.listenerTls) app.metrics.tlsReloads.inc({ result: 'rejected' })
      log.error({ problems: error.problems }, 'the new configuration is invalid; the running configuration stays')
      return
    }
    if (app.reload(next)) rewatch()
  }
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading the configuration and reopening the audit file')
    app.reopenAudit()
    reload()
  })
  rewatch()

  closeWithGrace({
    skip: ['SIGHUP'], // SIGHUP reloads the configuration (below); it never stops the proxy
    // The whole drain is bounded here too, in case closing itself stalls (the last
    // spans' export, when tracing, is bounded on its own and counted in).
    delay: config.shutdown.delayMs + config.shutdown.timeoutMs + TRACE_SHUTDOWN_TIMEOUT_MS + 5_000,
    logger: { error: (value: unknown) => log.error({ err: value }, 'shutdown') },
    onSecondSignal: (signal: string) => {
      log.warn({ signal }, 'second signal: exiting at once')
      process.exit(1)
    }
  }, async ({ signal, err }) => {
    if (err !== undefined) log.fatal({ err }, 'uncaught error: shutting down')
    watcher?.close()
    log.info({ signal, delayMs: config.shutdown.delayMs }, 'draining: /readyz now answers 503')
    app.lifecycle.draining = true
    if (err === undefined && config.shutdown.delayMs > 0) await sleep(config.shutdown.delayMs)
    log.info({ timeoutMs: config.shutdown.timeoutMs }, 'closing the listener; waiting for in-flight requests')
    const closed = app.close().then(() => true)
    const finished = await Promise.race([closed, sleep(config.shutdown.timeoutMs).then(() => false)])
    if (!finished) {
      log.warn('shutdown timeout reached: closing the remaining connections')
      app.server.closeAllConnections()
      await closed
    }
    // app.close() ran its onClose hooks after the last request: the trace exporter is flushed and shut down.
    log.info('stopped')
  })

  await app.listen({ host: config.host, port: config.port })
  log.info({ accounts: config.accounts.map((a) => ({ name: a.name, prefix: a.prefix })), upstream: config.upstream.url, version: version() }, 'pave-proxy ready')
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

main().catch((error: unknown) => {
  process.stderr.write(`pave-proxy: ${serializeError(error).message as string}\n`)
  process.exit(1)
})
