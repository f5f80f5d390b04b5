/**
 * The shape of pave-proxy's configuration, its defaults, and the table that maps
 * each setting to its environment variable and command-line flag.
 *
 * The YAML file uses the same keys as {@link Config} (camelCase, nested).
 */

/** One PAVE account the proxy signs for. */
export interface AccountConfig {
  /** A short name for logs and metrics, unique across accounts. */
  readonly name: string
  /** Path prefix served by this account (`/` is the default account; `/test` serves `/test/v1/...`). */
  readonly prefix: string
  /** PAVE's primary account name, the `<username>` of the token message. */
  readonly username: string
  /** The account's `API-Key`. */
  readonly apiKey: string
  /** The API secret (the HMAC key). Never logged, never printed. */
  readonly apiSecret: string
  /** Where the secret was read from, when it came from a file (watched for rotation). */
  readonly apiSecretFile?: string | undefined
}

export interface UpstreamConfig {
  /** Origin of the PAVE API. Default {@link DEFAULT_UPSTREAM_URL}. */
  readonly url: string
  /** Longest wait for a TCP+TLS connection to the upstream. Default 5000 ms. */
  readonly connectTimeoutMs: number
  /** Longest wait for the upstream's response headers. Default 30000 ms. */
  readonly timeoutMs: number
  /** Longest silence inside a response body. Default 60000 ms. */
  readonly idleTimeoutMs: number
  /** Most connections kept open to the upstream. Default 128. */
  readonly connections: number
  /** How long an idle pooled connection is kept. Default 4000 ms (below common 5 s server timeouts). */
  readonly keepAliveTimeoutMs: number
  /** PEM file of extra CA certificates trusted for the upstream (a private CA). Default none. */
  readonly caFile?: string | undefined
  /** Retries of a bodyless idempotent request whose connection failed before any byte was sent. Default 2. */
  readonly retries: number
  /** An egress (corporate) proxy to reach the upstream through. Default none: connect directly. */
  readonly egress?: EgressConfig | undefined
}

/**
 * The egress proxy, from the usual environment variables (lowercase first, as curl
 * and undici read them) or the YAML file. A proxy URL may carry credentials
 * (`http://user:pass@host:3128`): they are never printed.
 */
export interface EgressConfig {
  /** Proxy for an `https:` upstream (`https_proxy`/`HTTPS_PROXY`); when unset, `httpProxy` serves both. Default none. */
  readonly httpsProxy?: string | undefined
  /** Proxy for an `http:` upstream (`http_proxy`/`HTTP_PROXY`). Default none. */
  readonly httpProxy?: string | undefined
  /** Hosts reached directly, comma-separated (`no_proxy`/`NO_PROXY`): `host`, `.domain`, `host:port` or `*`. Default none. */
  readonly noProxy?: string | undefined
}

export interface SigningConfig {
  /** How long PAVE accepts a token after its timestamp. Default 300 s. */
  readonly tokenLifetimeSeconds: number
  /** A token is renewed this long before it would expire. Default 60 s. */
  readonly refreshMarginSeconds: number
  /** Learn the upstream's clock offset from its `Date` header and sign with it. Default true. */
  readonly clockSkewCorrection: boolean
  /** Log a warning when the learned offset exceeds this. Default 30 s. */
  readonly clockSkewWarnSeconds: number
  /**
   * How `API-Timestamp` is written (the token message uses exactly that string):
   * `iso-seconds` (`2023-02-11T12:00:00Z`, PAVE's written contract), `iso-millis`
   * (`toJSON()`), `unix-seconds`, `rfc1123` (`toUTCString()`). Default `iso-seconds`.
   */
  readonly timestampFormat: TimestampFormatSetting
}

/** The forms `signing.timestampFormat` takes (the same list as `signing/pave-token.ts`'s `TIMESTAMP_FORMATS`). */
export const TIMESTAMP_FORMAT_SETTINGS = ['iso-seconds', 'iso-millis', 'unix-seconds', 'rfc1123'] as const
export type TimestampFormatSetting = typeof TIMESTAMP_FORMAT_SETTINGS[number]

export interface ShutdownConfig {
  /** After SIGTERM, keep serving this long with `/readyz` answering 503. Default 5000 ms. */
  readonly delayMs: number
  /** Then wait at most this long for in-flight requests to finish. Default 30000 ms. */
  readonly timeoutMs: number
}

export interface InboundConfig {
  /** Longest time a caller may take to send the request headers. Default 10000 ms. */
  readonly headersTimeoutMs: number
  /** Longest time a caller may take to send a whole request, body included. Default 300000 ms. */
  readonly requestTimeoutMs: number
  /** How long an idle caller connection is kept open. Default 72000 ms. */
  readonly keepAliveTimeoutMs: number
  /** Largest request line plus headers, in bytes (larger: 431). Default 16384. */
  readonly maxHeaderSize: number
  /** Callers allowed, as CIDR blocks (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`). Default: any caller that can reach the listener. */
  readonly allow?: readonly string[] | undefined
  /** File holding a shared token callers must send as `Authorization: Bearer <token>`. Default none. */
  readonly tokenFile?: string | undefined
  /** The shared token read from `tokenFile`. Never logged. */
  readonly token?: string | undefined
}

/** How much the proxy takes on at once (see `inbound/admission.ts`). */
export interface CapacityConfig {
  /** Most proxied requests in flight at once. Default: `upstream.connections`. */
  readonly maxInFlight?: number | undefined
  /** Most requests waiting for a place; more get 503 at once. Default 1024 (Envoy's `max_pending_requests`). */
  readonly maxQueued: number
  /** Longest wait for a place; then 503. Default 10000 ms. */
  readonly queueTimeoutMs: number
  /** Longest time a started response may make no progress to a caller that stopped reading. Default 60000 ms (nginx's `send_timeout`). */
  readonly sendTimeoutMs: number
}

/**
 * One caller of the gateway (`callers:` in the configuration file): who it is, how it
 * proves it, and what it may do. With `callers` set, every other request is refused.
 */
export interface CallerConfig {
  /** Unique; lowercase letters, digits and `-`. Appears in logs, metrics and the audit trail. */
  readonly name: string
  /** A file of bearer tokens, one per line (several during a rotation), each at least 16 characters. Watched. Default none. */
  readonly tokenFile?: string | undefined
  /** The tokens read from `tokenFile`. Never logged. */
  readonly tokens?: readonly string[] | undefined
  /** A client certificate that proves this caller (TLS on the listener with a client CA). Default none. */
  readonly clientCert?: ClientCertProof | undefined
  /** A JWT that proves this caller (a Kubernetes projected service-account token, say). Default none. */
  readonly jwt?: JwtProof | undefined
  /** CIDR blocks the caller must also come from. Default: any address. */
  readonly from?: readonly string[] | undefined
  /** The accounts (by name) it may use. Default: every account. */
  readonly accounts?: readonly string[] | undefined
  /** What it may do; no rule, nothing. Default none. */
  readonly allow?: readonly AllowRule[] | undefined
}

/** A certificate match: a SAN URI (SPIFFE), a SAN DNS name, or the subject (`CN=ops-console`). */
export type ClientCertProof = { readonly uri: string } | { readonly dns: string } | { readonly subject: string }

export interface JwtProof {
  /** The `iss` the token must carry. */
  readonly issuer: string
  /** An `aud` the token must carry. */
  readonly audience: string
  /** The `sub` the token must carry (`system:serviceaccount:<namespace>:<name>`). */
  readonly subject: string
  /** A JWKS file (`kubectl get --raw /openid/v1/jwks`). One of `jwksFile`, `jwksUrl`. */
  readonly jwksFile?: string | undefined
  /** An HTTPS URL serving the JWKS, fetched through the egress settings. One of `jwksFile`, `jwksUrl`. */
  readonly jwksUrl?: string | undefined
  /** The keys read from `jwksFile` (public keys only). */
  readonly jwks?: JsonWebKeySetConfig | undefined
}

/** A JSON Web Key Set of public keys, as read from a file or URL. */
export interface JsonWebKeySetConfig {
  readonly keys: ReadonlyArray<Readonly<Record<string, unknown>>>
}

/** `methods` (`GET`… or `*`) × `paths` (`/v1/sessions/*`: `*` one segment, a last `**` any rest), as PAVE sees the path. */
export interface AllowRule {
  readonly methods: readonly string[]
  readonly paths: readonly string[]
}

/** The audit trail (see `observe/audit.ts`). */
export interface AuditConfig {
  /** Append audit lines to this file (reopened on SIGHUP). Default: standard output, marked `"audit": true`. */
  readonly file?: string | undefined
}

/** Who may read `/metrics`. */
export interface MetricsConfig {
  /** With `callers` set: the caller names allowed to read `/metrics`. Default: open, as without callers. */
  readonly callers?: readonly string[] | undefined
}

/** The samplers of `OTEL_TRACES_SAMPLER` that the proxy knows. */
export const TRACE_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const
export type TraceSampler = typeof TRACE_SAMPLERS[number]
/** The OTLP encodings over HTTP that the proxy exports with. */
export const TRACE_PROTOCOLS = ['http/protobuf', 'http/json'] as const

/**
 * OpenTelemetry traces (see `observe/tracing.ts`). Off unless an endpoint is set; the
 * environment uses the OpenTelemetry names (`OTEL_EXPORTER_OTLP_ENDPOINT`, …).
 */
export interface TracingConfig {
  /** OTLP/HTTP base URL; traces go to `<endpoint>/v1/traces` (`OTEL_EXPORTER_OTLP_ENDPOINT`). Default none: tracing off. */
  readonly endpoint?: string | undefined
  /** Full OTLP/HTTP traces URL, used as given; wins over `endpoint` (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). Default none. */
  readonly tracesEndpoint?: string | undefined
  /** `http/protobuf` or `http/json` (`OTEL_EXPORTER_OTLP_PROTOCOL`). Default `http/protobuf`. */
  readonly protocol: typeof TRACE_PROTOCOLS[number]
  /** Headers sent to the collector, e.g. its credentials (`OTEL_EXPORTER_OTLP_HEADERS`, `k=v,k2=v2`). Never logged. Default none. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** `service.name` of the spans (`OTEL_SERVICE_NAME`). Default: `service.name` of `resourceAttributes`, else `pave-proxy`. */
  readonly serviceName?: string | undefined
  /** More resource attributes (`OTEL_RESOURCE_ATTRIBUTES`, `k=v,k2=v2`). Default none. */
  readonly resourceAttributes?: Readonly<Record<string, string>> | undefined
  /** `OTEL_TRACES_SAMPLER`. Default `parentbased_always_on` (OpenTelemetry's default). */
  readonly sampler: TraceSampler
  /** The ratio of the `traceidratio` samplers, 0…1 (`OTEL_TRACES_SAMPLER_ARG`). Default 1. */
  readonly samplerArg?: number | undefined
  /** Longest time one export to the collector may take (`OTEL_EXPORTER_OTLP_TIMEOUT`). Default 10000 ms. */
  readonly exportTimeoutMs: number
  /** `OTEL_SDK_DISABLED`: no tracing even with an endpoint. Default false. */
  readonly disabled: boolean
  /**
   * Send W3C trace context (`traceparent`, `tracestate`, `baggage`) to PAVE: the proxy's
   * client span when traced, else the caller's headers as they came. Default false: PAVE
   * never receives trace headers, traced or not.
   */
  readonly propagateUpstream: boolean
}

/** How the listener asks for client certificates (see `inbound/listener-tls.ts`). */
export type ClientAuth = 'request' | 'require'

/**
 * TLS on the listener (HTTP/1.1 over TLS 1.2 or 1.3). The files are read when the
 * configuration is loaded and watched: new contents are swapped in live.
 */
export interface TlsConfig {
  /** PEM file of the listener's certificate, followed by its intermediates. Required with TLS. */
  readonly certFile: string
  /** PEM file of the certificate's private key (unencrypted). Required with TLS. */
  readonly keyFile: string
  /** PEM file of the CAs whose client certificates the listener verifies. Default none: no client certificates asked for. */
  readonly clientCaFile?: string | undefined
  /**
   * With a client CA: `request` (default) asks for a certificate and accepts a connection
   * without one (or with one that does not verify: it then proves nothing); `require`
   * refuses, at the handshake, a connection without a certificate the CA verifies.
   */
  readonly clientAuth?: ClientAuth | undefined
  /** The contents of `certFile`. */
  readonly cert: string
  /** The contents of `keyFile`. Never logged, never printed. */
  readonly key: string
  /** The contents of `clientCaFile`. */
  readonly clientCa?: string | undefined
}

/** The validated, frozen configuration that everything inside the proxy trusts. */
export interface Config {
  /** Listen address. Default `127.0.0.1` (loopback: only the apps beside it can call). */
  readonly host: string
  /** Listen port. Default 8080. */
  readonly port: number
  /** pino level: fatal, error, warn, info, debug, trace or silent. Default `info`. */
  readonly logLevel: string
  /** Largest request body accepted, in bytes (larger: 413). Default 52428800 (50 MiB). */
  readonly bodyLimit: number
  readonly upstream: UpstreamConfig
  readonly signing: SigningConfig
  readonly shutdown: ShutdownConfig
  readonly inbound: InboundConfig
  readonly capacity: CapacityConfig
  readonly tracing: TracingConfig
  /** TLS on the listener. Default none: plain HTTP. */
  readonly tls?: TlsConfig | undefined
  readonly accounts: readonly AccountConfig[]
  /** The gateway's callers; set, every request must come from one of them. Default none (the sidecar: anyone who reaches the listener). */
  readonly callers?: readonly CallerConfig[] | undefined
  /** The audit trail. Default: standard output, with `callers` set. */
  readonly audit?: AuditConfig | undefined
  /** Who may read `/metrics`. Default: open. */
  readonly metrics?: MetricsConfig | undefined
  /** The YAML file this configuration was read from, if any. */
  readonly configFile?: string | undefined
}

export const DEFAULT_UPSTREAM_URL = 'https://openapi.paveapi.com'
export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 8080
export const DEFAULT_LOG_LEVEL = 'info'
export const DEFAULT_BODY_LIMIT = 52_428_800
export const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS = 5_000
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 60_000
export const DEFAULT_UPSTREAM_CONNECTIONS = 128
export const DEFAULT_UPSTREAM_KEEP_ALIVE_TIMEOUT_MS = 4_000
export const DEFAULT_UPSTREAM_RETRIES = 2
export const DEFAULT_CLOCK_SKEW_WARN_SECONDS = 30
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 300
export const DEFAULT_REFRESH_MARGIN_SECONDS = 60
export const DEFAULT_TIMESTAMP_FORMAT_SETTING: TimestampFormatSetting = 'iso-seconds'
export const DEFAULT_SHUTDOWN_DELAY_MS = 5_000
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000
export const DEFAULT_INBOUND_HEADERS_TIMEOUT_MS = 10_000
export const DEFAULT_INBOUND_REQUEST_TIMEOUT_MS = 300_000
export const DEFAULT_INBOUND_KEEP_ALIVE_TIMEOUT_MS = 72_000
export const DEFAULT_INBOUND_MAX_HEADER_SIZE = 16_384
export const DEFAULT_MAX_QUEUED = 1024
export const DEFAULT_QUEUE_TIMEOUT_MS = 10_000
export const DEFAULT_SEND_TIMEOUT_MS = 60_000
export const DEFAULT_TRACING_SERVICE_NAME = 'pave-proxy'
export const DEFAULT_TRACING_SAMPLER: TraceSampler = 'parentbased_always_on'
export const DEFAULT_TRACING_EXPORT_TIMEOUT_MS = 10_000
/** Name and prefix of the account defined by `PAVE_USERNAME`/`PAVE_API_KEY`/`PAVE_API_SECRET`. */
export const DEFAULT_ACCOUNT_NAME = 'default'
export const DEFAULT_ACCOUNT_PREFIX = '/'

/** Methods an allow rule may name (`*`: all of them). */
export const ALLOW_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Everything but the accounts, as the defaults the other layers override. */
export function defaultSettings (): Record<string, unknown> {
  return {
    host: DEFAULT_HOST,
    port: DEFAULT_PORT,
    logLevel: DEFAULT_LOG_LEVEL,
    bodyLimit: DEFAULT_BODY_LIMIT,
    upstream: {
      url: DEFAULT_UPSTREAM_URL,
      connectTimeoutMs: DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS,
      timeoutMs: DEFAULT_UPSTREAM_TIMEOUT_MS,
      idleTimeoutMs: DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
      connections: DEFAULT_UPSTREAM_CONNECTIONS,
      keepAliveTimeoutMs: DEFAULT_UPSTREAM_KEEP_ALIVE_TIMEOUT_MS,
      retries: DEFAULT_UPSTREAM_RETRIES
    },
    signing: {
      tokenLifetimeSeconds: DEFAULT_TOKEN_LIFETIME_SECONDS,
      refreshMarginSeconds: DEFAULT_REFRESH_MARGIN_SECONDS,
      clockSkewCorrection: true,
      clockSkewWarnSeconds: DEFAULT_CLOCK_SKEW_WARN_SECONDS,
      timestampFormat: DEFAULT_TIMESTAMP_FORMAT_SETTING
    },
    shutdown: {
      delayMs: DEFAULT_SHUTDOWN_DELAY_MS,
      timeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS
    },
    inbound: {
      headersTimeoutMs: DEFAULT_INBOUND_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: DEFAULT_INBOUND_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: DEFAULT_INBOUND_KEEP_ALIVE_TIMEOUT_MS,
      maxHeaderSize: DEFAULT_INBOUND_MAX_HEADER_SIZE
    },
    capacity: {
      maxQueued: DEFAULT_MAX_QUEUED,
      queueTimeoutMs: DEFAULT_QUEUE_TIMEOUT_MS,
      sendTimeoutMs: DEFAULT_SEND_TIMEOUT_MS
    },
    tracing: {
      protocol: 'http/protobuf',
      sampler: DEFAULT_TRACING_SAMPLER,
      exportTimeoutMs: DEFAULT_TRACING_EXPORT_TIMEOUT_MS,
      disabled: false,
      propagateUpstream: false
    }
  }
}

/** A setting that the environment and the command line can also set. */
export interface SettingSource {
  /** Dotted path in {@link Config} and in the YAML file. */
  readonly path: string
  /** Environment variable name. */
  readonly env: string
  /** Command-line flag (without `--`), when there is one. */
  readonly flag?: string
  /** `list`: comma-separated in the environment; `map`: `k=v,k2=v2` with percent-encoded values (OpenTelemetry's form). */
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'list' | 'map'
}

/** Every scalar setting with an environment name (accounts are handled apart). */
export const SETTING_SOURCES: readonly SettingSource[] = [
  { path: 'host', env: 'HOST', flag: 'host', type: 'string' },
  { path: 'port', env: 'PORT', flag: 'port', type: 'integer' },
  { path: 'logLevel', env: 'LOG_LEVEL', flag: 'log-level', type: 'string' },
  { path: 'bodyLimit', env: 'PAVE_PROXY_BODY_LIMIT', flag: 'body-limit', type: 'integer' },
  { path: 'upstream.url', env: 'PAVE_UPSTREAM_URL', flag: 'upstream-url', type: 'string' },
  { path: 'upstream.connectTimeoutMs', env: 'PAVE_UPSTREAM_CONNECT_TIMEOUT_MS', type: 'integer' },
  { path: 'upstream.timeoutMs', env: 'PAVE_UPSTREAM_TIMEOUT_MS', type: 'integer' },
  { path: 'upstream.idleTimeoutMs', env: 'PAVE_UPSTREAM_IDLE_TIMEOUT_MS', type: 'integer' },
  { path: 'upstream.connections', env: 'PAVE_UPSTREAM_CONNECTIONS', type: 'integer' },
  { path: 'upstream.caFile', env: 'PAVE_UPSTREAM_CA_FILE', type: 'string' },
  { path: 'upstream.retries', env: 'PAVE_UPSTREAM_RETRIES', type: 'integer' },
  { path: 'signing.tokenLifetimeSeconds', env: 'PAVE_TOKEN_LIFETIME_SECONDS', type: 'integer' },
  { path: 'signing.refreshMarginSeconds', env: 'PAVE_TOKEN_REFRESH_MARGIN_SECONDS', type: 'integer' },
  { path: 'signing.clockSkewCorrection', env: 'PAVE_CLOCK_SKEW_CORRECTION', type: 'boolean' },
  { path: 'signing.clockSkewWarnSeconds', env: 'PAVE_CLOCK_SKEW_WARN_SECONDS', type: 'integer' },
  { path: 'signing.timestampFormat', env: 'PAVE_TIMESTAMP_FORMAT', type: 'string' },
  { path: 'inbound.allow', env: 'PAVE_PROXY_ALLOW', type: 'list' },
  { path: 'inbound.tokenFile', env: 'PAVE_PROXY_TOKEN_FILE', type: 'string' },
  { path: 'capacity.maxInFlight', env: 'PAVE_PROXY_MAX_IN_FLIGHT', type: 'integer' },
  { path: 'capacity.maxQueued', env: 'PAVE_PROXY_MAX_QUEUED', type: 'integer' },
  { path: 'capacity.queueTimeoutMs', env: 'PAVE_PROXY_QUEUE_TIMEOUT_MS', type: 'integer' },
  { path: 'capacity.sendTimeoutMs', env: 'PAVE_PROXY_SEND_TIMEOUT_MS', type: 'integer' },
  { path: 'shutdown.delayMs', env: 'PAVE_PROXY_SHUTDOWN_DELAY_MS', type: 'integer' },
  { path: 'shutdown.timeoutMs', env: 'PAVE_PROXY_SHUTDOWN_TIMEOUT_MS', type: 'integer' },
  { path: 'tracing.endpoint', env: 'OTEL_EXPORTER_OTLP_ENDPOINT', type: 'string' },
  { path: 'tracing.tracesEndpoint', env: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', type: 'string' },
  { path: 'tracing.protocol', env: 'OTEL_EXPORTER_OTLP_PROTOCOL', type: 'string' },
  { path: 'tracing.headers', env: 'OTEL_EXPORTER_OTLP_HEADERS', type: 'map' },
  { path: 'tracing.exportTimeoutMs', env: 'OTEL_EXPORTER_OTLP_TIMEOUT', type: 'integer' },
  { path: 'tracing.serviceName', env: 'OTEL_SERVICE_NAME', type: 'string' },
  { path: 'tracing.resourceAttributes', env: 'OTEL_RESOURCE_ATTRIBUTES', type: 'map' },
  { path: 'tracing.sampler', env: 'OTEL_TRACES_SAMPLER', type: 'string' },
  { path: 'tracing.samplerArg', env: 'OTEL_TRACES_SAMPLER_ARG', type: 'number' },
  { path: 'tracing.disabled', env: 'OTEL_SDK_DISABLED', type: 'boolean' },
  { path: 'tracing.propagateUpstream', env: 'PAVE_PROXY_TRACING_PROPAGATE_UPSTREAM', type: 'boolean' },
  { path: 'tls.certFile', env: 'PAVE_PROXY_TLS_CERT_FILE', type: 'string' },
  { path: 'tls.keyFile', env: 'PAVE_PROXY_TLS_KEY_FILE', type: 'string' },
  { path: 'tls.clientCaFile', env: 'PAVE_PROXY_TLS_CLIENT_CA_FILE', type: 'string' },
  { path: 'tls.clientAuth', env: 'PAVE_PROXY_TLS_CLIENT_AUTH', type: 'string' }
]

/** Environment names of the default account's credentials. */
export const ACCOUNT_ENV = {
  username: 'PAVE_USERNAME',
  apiKey: 'PAVE_API_KEY',
  apiSecret: 'PAVE_API_SECRET',
  apiSecretFile: 'PAVE_API_SECRET_FILE'
} as const

/** The environment variable naming the YAML configuration file. */
export const CONFIG_FILE_ENV = 'PAVE_PROXY_CONFIG'

/** Environment names of the egress proxy settings (`upstream.egress.*`), the first set one wins. */
export const EGRESS_ENV = {
  httpsProxy: ['https_proxy', 'HTTPS_PROXY'],
  httpProxy: ['http_proxy', 'HTTP_PROXY'],
  noProxy: ['no_proxy', 'NO_PROXY']
} as const

/** Every environment variable pave-proxy reads. */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.freeze([
  CONFIG_FILE_ENV,
  ...Object.values(ACCOUNT_ENV),
  ...SETTING_SOURCES.map((s) => s.env),
  ...Object.values(EGRESS_ENV).flat()
])

const ms = { type: 'integer', minimum: 1, maximum: 86_400_000 }
const msOrZero = { type: 'integer', minimum: 0, maximum: 86_400_000 }
const nonEmpty = { type: 'string', minLength: 1 }

/** JSON schema of the merged configuration (after defaults, file, environment and flags). */
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'port', 'logLevel', 'bodyLimit', 'upstream', 'signing', 'shutdown', 'inbound', 'capacity', 'tracing', 'accounts'],
  properties: {
    host: nonEmpty,
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    logLevel: { enum: LOG_LEVELS },
    bodyLimit: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    upstream: {
      type: 'object',
      additionalProperties: false,
      properties: {
        url: nonEmpty,
        connectTimeoutMs: ms,
        timeoutMs: ms,
        idleTimeoutMs: ms,
        connections: { type: 'integer', minimum: 1, maximum: 65536 },
        keepAliveTimeoutMs: ms,
        caFile: nonEmpty,
        retries: { type: 'integer', minimum: 0, maximum: 5 },
        egress: {
          type: 'object',
          additionalProperties: false,
          properties: { httpsProxy: nonEmpty, httpProxy: nonEmpty, noProxy: nonEmpty }
        }
      }
    },
    signing: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tokenLifetimeSeconds: { type: 'integer', minimum: 10, maximum: 86_400 },
        refreshMarginSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
        clockSkewCorrection: { type: 'boolean' },
        clockSkewWarnSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
        timestampFormat: { enum: TIMESTAMP_FORMAT_SETTINGS }
      }
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      properties: { delayMs: msOrZero, timeoutMs: msOrZero }
    },
    inbound: {
      type: 'object',
      additionalProperties: false,
      properties: {
        headersTimeoutMs: ms,
        requestTimeoutMs: msOrZero,
        keepAliveTimeoutMs: ms,
        maxHeaderSize: { type: 'integer', minimum: 1024, maximum: 1_048_576 },
        allow: { type: 'array', items: nonEmpty, minItems: 1 },
        tokenFile: nonEmpty,
        token: nonEmpty
      }
    },
    capacity: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxInFlight: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        maxQueued: { type: 'integer', minimum: 0, maximum: 1_000_000 },
        queueTimeoutMs: ms,
        sendTimeoutMs: ms
      }
    },
    callers: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
          tokenFile: nonEmpty,
          tokens: { type: 'array', items: nonEmpty },
          clientCert: {
            type: 'object',
            minProperties: 1,
            maxProperties: 1,
            additionalProperties: false,
            properties: { uri: nonEmpty, dns: nonEmpty, subject: nonEmpty }
          },
          jwt: {
            type: 'object',
            additionalProperties: false,
            required: ['issuer', 'audience', 'subject'],
            properties: { issuer: nonEmpty, audience: nonEmpty, subject: nonEmpty, jwksFile: nonEmpty, jwksUrl: nonEmpty, jwks: { type: 'object' } }
          },
          from: { type: 'array', items: nonEmpty, minItems: 1 },
          accounts: { type: 'array', items: nonEmpty, minItems: 1 },
          allow: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['methods', 'paths'],
              properties: {
                methods: { type: 'array', minItems: 1, items: { enum: ['*', ...ALLOW_METHODS] } },
                paths: { type: 'array', minItems: 1, items: nonEmpty }
              }
            }
          }
        }
      }
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      properties: { file: nonEmpty }
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      properties: { callers: { type: 'array', items: nonEmpty } }
    },
    tracing: {
      type: 'object',
      additionalProperties: false,
      properties: {
        endpoint: nonEmpty,
        tracesEndpoint: nonEmpty,
        protocol: { enum: TRACE_PROTOCOLS },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        serviceName: nonEmpty,
        resourceAttributes: { type: 'object', additionalProperties: { type: 'string' } },
        sampler: { enum: TRACE_SAMPLERS },
        samplerArg: { type: 'number', minimum: 0, maximum: 1 },
        exportTimeoutMs: ms,
        disabled: { type: 'boolean' },
        propagateUpstream: { type: 'boolean' }
      }
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: {
        certFile: nonEmpty,
        keyFile: nonEmpty,
        clientCaFile: nonEmpty,
        clientAuth: { enum: ['request', 'require'] },
        // filled in by the loader from the files, never taken from the file itself
        cert: nonEmpty,
        key: nonEmpty,
        clientCa: nonEmpty
      }
    },
    accounts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'prefix', 'username', 'apiKey'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' },
          prefix: { type: 'string', pattern: '^/([A-Za-z0-9_~-][A-Za-z0-9_.~-]*(/[A-Za-z0-9_~-][A-Za-z0-9_.~-]*)*)?$' },
          username: nonEmpty,
          apiKey: nonEmpty,
          apiSecret: nonEmpty,
          apiSecretFile: nonEmpty
        }
      }
    }
  }
} as const
