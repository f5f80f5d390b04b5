/**
 * `buildApp(config)`: a Fastify instance with everything registered. It never
 * listens and never touches `process`; `main.ts` does that.
 */
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import { pino, type DestinationStream, type Logger } from 'pino'
import type { Server as TlsServer } from 'node:tls'
import type { Dispatcher } from 'undici'
import type { Config } from './config/schema.js'
import { AccountTable } from './config/account-table.js'
import { createGuardStage, createInboundGuard } from './inbound/guard.js'
import { planReload, tlsMaterialChanged } from './config/reload.js'
import { ClockSkew } from './signing/clock-skew.js'
import { createAccessLog, QuietLogController, trackRequest } from './observe/access-log.js'
import { countReload, createMetrics, type Metrics } from './observe/metrics.js'
import { adminRoutes, type Lifecycle } from './observe/admin.js'
import { buildMetricsListener } from './observe/metrics-listener.js'
import { ProxyError, type ErrorCode } from './errors.js'
import { LazyRequestLogger, loggerOptions } from './observe/logging.js'
import { PROXIED_METHODS, proxyRoutes } from './proxy.js'
import { targetStage } from './inbound/request-target.js'
import { createInboundPipeline, type InboundStage } from './inbound/pipeline.js'
import { AdmissionGate, armSendTimeouts, createAdmissionStage, overloadOptions, type OverloadOptions } from './inbound/admission.js'
import { connectionsCheckingInterval, createClientErrorHandler } from './inbound/client-errors.js'
import { createLimits } from './inbound/limits/stage.js'
import { listenerTlsOptions, manageListenerTls, type ListenerTls } from './inbound/listener-tls.js'
import { sendError } from './reply-error.js'
import { Signer } from './signing/signer.js'
import { createDispatcher } from './upstream/dispatcher.js'
import { compileCallers, type Callers } from './inbound/callers.js'
import { createIdentityStage, type CallersRef } from './inbound/identity.js'
import { createPolicyStage } from './inbound/policy.js'
import { JwksRegistry } from './inbound/jwks.js'
import { createJwksFetcher } from './upstream/jwks-fetch.js'
import { createAuditTrail, type AuditTrail } from './observe/audit.js'
import { createTracing, type Tracing } from './observe/tracing.js'

export interface BuildAppOptions {
  /** Where log lines go. Default stdout. */
  readonly logStream?: DestinationStream
  /** Wall clock for signing, in epoch ms. Default `Date.now`. */
  readonly now?: () => number
  /**
   * The upstream connection pool. Default: one built from `config.upstream`. Its
   * `headersTimeout` bounds the wait for an answer without interim (1xx) responses
   * (see `upstream/forward.ts`).
   */
  readonly dispatcher?: Dispatcher
  /** Capacity limits (see `inbound/admission.ts`); each one not given takes its default. */
  readonly overload?: Partial<OverloadOptions>
  /**
   * Stages left out, for the benchmarks' price list only (`bench/pave-variant.ts` prices
   * each stage by switching it on alone); the process (`main.ts`) never leaves one out.
   * Default none.
   */
  readonly leaveOut?: readonly PricedStage[]
  /** Shortest time between two JWKS reads caused by unknown `kid`s. Default 30000 ms (see `inbound/jwks.ts`). */
  readonly jwksRefreshIntervalMs?: number
}

/** The always-on stages the benchmarks price one by one (the access line and clock-skew sampling are settings). */
export type PricedStage = 'metrics' | 'admission'

declare module 'fastify' {
  interface FastifyInstance {
    /** Draining state shared with `main.ts`'s signal handling. */
    lifecycle: Lifecycle
    signer: Signer
    metrics: Metrics
    /**
     * With `metrics.port`: the separate listener for `/metrics` and the probes, built but
     * not listening (`main.ts` listens on it); closed when this app closes. Otherwise undefined.
     */
    metricsListener: FastifyInstance | undefined
    clockSkew: ClockSkew | undefined
    /** OpenTelemetry tracing, when configured (flushed and shut down when the app closes). */
    tracing: Tracing | undefined
    /** The configuration in force (changes on reload). */
    currentConfig: () => Config
    /**
     * Applies a new, already validated configuration: account credentials and log
     * level change live; `false` when it cannot be applied without a restart.
     */
    reload: (next: Config) => boolean
    /** Reopens the audit file (SIGHUP, after log rotation). */
    reopenAudit: () => void
  }
}

/** A caller's `x-request-id` is kept when it is short and plain; otherwise a new one is made. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:@/+=-]{1,128}$/

export async function buildApp (config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = pino(loggerOptions(config.logLevel), options.logStream)
  // Node checks the headers and request timeouts only every connectionsCheckingInterval (30 s by
  // default); a request without Host gets the proxy's JSON 400 (request-target.ts), not Node's bare one.
  const http = { maxHeaderSize: config.inbound.maxHeaderSize, connectionsCheckingInterval: connectionsCheckingInterval(config.inbound), requireHostHeader: false }
  // With TLS, Fastify hands only `https` to https.createServer: the HTTP options go in it too.
  const listener = config.tls !== undefined ? { https: { ...http, ...listenerTlsOptions(config.tls, config.inbound.headersTimeoutMs) } } : { http }
  const app = Fastify({
    loggerInstance: logger,
    logController: new QuietLogController(),
    // Per-request pino children are made only for requests that log (most never do).
    childLoggerFactory: (parent, bindings, childOptions) => new LazyRequestLogger(parent as never, bindings, childOptions as Record<string, unknown>) as unknown as FastifyBaseLogger,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID()
    },
    bodyLimit: config.bodyLimit,
    requestTimeout: config.inbound.requestTimeoutMs,
    keepAliveTimeout: config.inbound.keepAliveTimeoutMs,
    ...listener,
    // A path the router cannot decode (malformed or overlong percent-encoding) never reaches the hooks.
    frameworkErrors: (_error, request, reply) => {
      void reply.header('x-request-id', request.id)
      sendError(reply, 'PAVE_PROXY_REQUEST_BAD_PATH')
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    clientErrorHandler: createClientErrorHandler(logger)
  })
  app.server.headersTimeout = config.inbound.headersTimeoutMs

  const accessLog = createAccessLog(logger as Logger)
  const gateway = gatewayParts(config, options, logger as Logger)
  const audit = gateway.auditOn ? await createAuditTrail({ file: config.audit?.file, stdout: logStreamOf(logger as Logger), logger }) : undefined
  let current = config
  const accounts = new AccountTable(config.accounts)
  const capacity = overloadOptions(config, options.overload)
  const gate = new AdmissionGate(capacity)
  const metrics = createMetrics({ queued: () => gate.queued })
  const now = options.now ?? Date.now
  const clockSkew = config.signing.clockSkewCorrection
    ? new ClockSkew({
      now,
      warnThresholdMs: config.signing.clockSkewWarnSeconds * 1000,
      onChange: (offsetMs, crossed) => {
        metrics.clockOffset.set(offsetMs / 1000)
        if (crossed) {
          if (Math.abs(offsetMs) > config.signing.clockSkewWarnSeconds * 1000) app.log.warn({ offsetMs }, 'the upstream clock is far from the local clock: signing with the learned offset; check the host\'s time sync')
          else app.log.info({ offsetMs }, 'the clock offset is back within the warning threshold')
        }
      }
    })
    : undefined
  const signer = new Signer({
    tokenLifetimeSeconds: config.signing.tokenLifetimeSeconds,
    refreshMarginSeconds: config.signing.refreshMarginSeconds,
    timestampFormat: config.signing.timestampFormat,
    now,
    ...(clockSkew !== undefined ? { clockOffsetMs: () => clockSkew.offsetMs } : {}),
    onRenew: (account) => metrics.tokenRenewals.inc({ account: account.name })
  })
  const inboundGuard = createInboundGuard(config.inbound)
  const listenerTls: ListenerTls | undefined = config.tls !== undefined ? manageListenerTls(app.server as unknown as TlsServer, config.tls, metrics, app.log) : undefined
  const leaveOut = new Set(options.leaveOut)
  const dispatcher = options.dispatcher ?? createDispatcher(config.upstream)
  app.decorate('lifecycle', { draining: false })
  app.decorate('signer', signer)
  app.decorate('metrics', metrics)
  app.decorate('clockSkew', clockSkew)
  app.decorate('currentConfig', () => current)
  app.decorate('reload', (next: Config): boolean => {
    const plan = planReload(current, next)
    if (!plan.ok) {
      countReload(metrics, 'rejected')
      app.log.error({ reason: plan.reason }, 'configuration reload refused; the running configuration stays')
      return false
    }
    // First, as it alone can still fail: new TLS material for the running listener (all or nothing).
    if (listenerTls !== undefined && next.tls !== undefined && !plan.restartNeeded.includes('tls') && tlsMaterialChanged(current, next) && !listenerTls.swap(next.tls)) {
      countReload(metrics, 'rejected')
      return false
    }
    // Compiled before anything changes, so accounts and callers are swapped together.
    const nextCallers = gateway.compile(next)
    if (gateway.callers !== undefined) gateway.callers.current = nextCallers as Callers
    const changed = accounts.replace(next.accounts)
    for (const name of changed) signer.invalidate(name)
    current = next
    countReload(metrics, 'applied')
    app.log.info({ changedAccounts: changed, restartNeeded: plan.restartNeeded, logLevel: next.logLevel }, 'configuration reloaded')
    app.log.level = next.logLevel
    return true
  })
  app.decorate('callersConfigured', gateway.callers !== undefined)
  app.decorate('reopenAudit', () => audit?.reopen())
  app.decorateRequest('caller', undefined)
  app.addHook('onClose', async () => {
    accessLog.flush()
    if (options.dispatcher === undefined) await dispatcher.close()
    await gateway.close()
    audit?.close()
  })

  // Off unless configured: then nothing of OpenTelemetry is loaded and no request pays for it.
  const tracing = await createTracing(config.tracing, { metrics, log: logger, upstream: new URL(config.upstream.url) })
  app.decorate('tracing', tracing)
  if (tracing !== undefined) {
    app.decorateRequest('traceSpan', undefined)
    // onClose runs once the listener has closed and in-flight requests are done: their spans are flushed.
    app.addHook('onClose', async () => { await tracing.shutdown() })
  }

  // Every stage is built once, here; the ones not configured are left out and cost nothing.
  const stages: InboundStage[] = tracing?.stage !== undefined ? [tracing.stage, targetStage] : [targetStage]
  if (inboundGuard !== undefined) stages.push(createGuardStage(inboundGuard))
  if (gateway.callers !== undefined) stages.push(createIdentityStage(gateway.callers), createPolicyStage(gateway.callers))
  const limits = await createLimits(config, { log: logger, metrics })
  if (limits !== undefined) {
    stages.push(limits.stage)
    app.addHook('onClose', limits.close)
  }
  if (!leaveOut.has('admission')) {
    stages.push(createAdmissionStage(gate))
    armSendTimeouts(app.server, capacity.sendTimeoutMs)
  }
  const inbound = createInboundPipeline(stages, tracing?.waited)
  const requestMetrics = leaveOut.has('metrics') ? undefined : metrics

  app.addHook('onRequest', (request, reply, done) => {
    trackRequest(request, reply, requestMetrics, accessLog, audit)
    void reply.header('x-request-id', request.id)
    inbound(request, reply, done)
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    let code: ErrorCode
    if (error instanceof ProxyError) code = error.code
    else if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) code = 'PAVE_PROXY_REQUEST_BAD'
    else {
      code = 'PAVE_PROXY_INTERNAL'
      request.log.error({ err: error }, 'request failed inside the proxy')
    }
    sendError(reply, code)
  })

  app.setNotFoundHandler((request, reply) => {
    sendError(reply, (PROXIED_METHODS as readonly string[]).includes(request.method) ? 'PAVE_PROXY_ROUTE_NOT_FOUND' : 'PAVE_PROXY_METHOD_NOT_ALLOWED')
  })

  const separateMetrics = config.metrics.port !== undefined
  const metricsListener = separateMetrics ? await buildMetricsListener({ logger: logger.child({ listener: 'metrics' }), lifecycle: app.lifecycle, metrics, clockSkew, limits: limits?.state }) : undefined
  app.decorate('metricsListener', metricsListener)
  // Runs after the main listener has drained (Fastify closes its server first).
  if (metricsListener !== undefined) app.addHook('onClose', async () => { await metricsListener.close() })
  await app.register(adminRoutes, { lifecycle: app.lifecycle, metrics, clockSkew, limits: limits?.state, serveMetrics: !separateMetrics })
  await app.register(proxyRoutes, { config, accounts, signer, dispatcher, metrics, clockSkew, limits, tracing, observeLatency: requestMetrics !== undefined })
  return app
}

/** The gateway's pieces: the callers in force (swapped on reload), their JWKS sources, whether the audit trail is kept. */
function gatewayParts (config: Config, options: BuildAppOptions, logger: Logger): { callers: CallersRef | undefined, compile: (next: Config) => Callers | undefined, auditOn: boolean, close: () => Promise<void> } {
  const fetcher = createJwksFetcher(config.upstream)
  const jwks = new JwksRegistry({
    readFile: async (path) => await readFile(path, 'utf8'),
    fetchUrl: fetcher.fetch,
    ...(options.jwksRefreshIntervalMs !== undefined ? { refreshIntervalMs: options.jwksRefreshIntervalMs } : {}),
    onRefreshFailed: (source, reason) => logger.warn({ source, reason }, 'cannot read a JWKS; the last good keys stay')
  })
  const compile = (next: Config): Callers | undefined => compileCallers(next, { jwks })
  const first = compile(config)
  return {
    callers: first !== undefined ? { current: first } : undefined,
    compile,
    auditOn: config.callers !== undefined || config.audit?.file !== undefined,
    close: fetcher.close
  }
}

/** The logger's destination, where the preformatted lines go. */
function logStreamOf (logger: Logger): { write: (line: string) => unknown } {
  return (logger as unknown as Record<symbol, { write: (line: string) => unknown }>)[pino.symbols.streamSym] as { write: (line: string) => unknown }
}
