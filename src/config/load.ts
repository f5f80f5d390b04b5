/**
 * Loads pave-proxy's configuration: defaults < YAML file < environment < flags.
 *
 * One validation pass collects every problem, names each setting by the name the
 * operator used (an environment variable, a flag or a YAML key) and never prints
 * a secret. The result is a deeply frozen {@link Config}.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { parse as parseYaml } from 'yaml'
import {
  ACCOUNT_ENV, CONFIG_FILE_ENV, CONFIG_SCHEMA, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_PREFIX,
  EGRESS_ENV, SETTING_SOURCES, defaultSettings, type AccountConfig, type Config, type SettingSource
} from './schema.js'
import { parseCommandLine, type CommandLine } from './cli.js'
import { parseCidr } from './cidr.js'
import { prepareCallers } from './callers.js'
import { readListenerTls } from './tls-files.js'

export * from './schema.js'

/** Thrown when the configuration is invalid; `problems` lists every one found. */
export class ConfigError extends Error {
  readonly problems: readonly string[]
  /** Whether some of the problems are in the listener's TLS files (a refused certificate swap). */
  readonly listenerTls: boolean
  constructor (problems: readonly string[], options: { listenerTls?: boolean } = {}) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
    this.problems = problems
    this.listenerTls = options.listenerTls ?? false
  }
}

export interface LoadConfigInput {
  /** The environment to read (`process.env` in the process; a plain object in tests). */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Command-line arguments after the program name, or an already parsed command line. */
  readonly argv?: readonly string[] | CommandLine
  /** Directory relative file paths are resolved against. Default `process.cwd()`. */
  readonly cwd?: string
  /** Reads a file as UTF-8 (injectable for tests). */
  readonly readFile?: (path: string) => string
}

type Raw = Record<string, unknown>

/** Builds the configuration, or throws {@link ConfigError} listing every problem. */
export function loadConfig (input: LoadConfigInput = {}): Config {
  const env = input.env ?? {}
  const cwd = input.cwd ?? process.cwd()
  const readFile = input.readFile ?? ((path: string) => readFileSync(path, 'utf8'))
  const commandLine = Array.isArray(input.argv) || input.argv === undefined
    ? parseCommandLine((input.argv as readonly string[] | undefined) ?? [])
    : input.argv as CommandLine
  const problems: string[] = []
  const labels = new Map<string, string>() // instance path → the name the operator used

  const raw = defaultSettings()
  const configFile = commandLine.flags.config ?? nonEmpty(env[CONFIG_FILE_ENV])
  let fileAccounts: Raw[] = []
  let absoluteConfigFile: string | undefined
  if (configFile !== undefined) {
    absoluteConfigFile = isAbsolute(configFile) ? configFile : resolve(cwd, configFile)
    const fileLabel = commandLine.flags.config !== undefined ? '--config' : CONFIG_FILE_ENV
    const fromFile = readConfigFile(absoluteConfigFile, fileLabel, readFile, problems)
    if (fromFile !== undefined) {
      const { accounts, ...settings } = fromFile
      deepMerge(raw, settings)
      if (accounts !== undefined) {
        if (Array.isArray(accounts)) fileAccounts = accounts.map((a) => (isObject(a) ? { ...a } : a))
        else problems.push('accounts (in the config file) must be a list')
      }
    }
  }

  for (const source of SETTING_SOURCES) {
    const fromEnv = nonEmpty(env[source.env])
    const fromFlag = source.flag !== undefined ? commandLine.flags[source.flag] : undefined
    const value = fromFlag ?? fromEnv
    const pointer = '/' + source.path.split('.').join('/')
    if (value !== undefined) {
      setPath(raw, source.path, convert(value, source.type))
      labels.set(pointer, fromFlag !== undefined ? `--${source.flag as string}` : source.env)
    } else {
      labels.set(pointer, `${source.path} (${source.env})`)
    }
  }

  // The egress proxy: the usual variables, lowercase first (as curl and undici read them).
  for (const [key, names] of Object.entries(EGRESS_ENV)) {
    const name = names.find((n) => nonEmpty(env[n]) !== undefined)
    if (name !== undefined) setPath(raw, `upstream.egress.${key}`, env[name])
    labels.set(`/upstream/egress/${key}`, name ?? `upstream.egress.${key} (${names.join(' or ')})`)
  }

  raw.accounts = mergeEnvironmentAccount(fileAccounts, env, labels, problems)
  const accounts = raw.accounts as Raw[]

  // Secrets from files: read after merging, so a file named by any layer is honoured.
  accounts.forEach((account, index) => {
    if (!isObject(account)) return
    const secretFile = account.apiSecretFile
    if (typeof secretFile === 'string' && secretFile !== '') {
      const label = labels.get(`/accounts/${index}/apiSecretFile`) as string // every account index has its labels
      const path = isAbsolute(secretFile) ? secretFile : resolve(cwd, secretFile)
      try {
        const secret = readFile(path).replace(/\r?\n$/, '')
        if (secret === '') problems.push(`${label}: the file is empty`)
        else account.apiSecret = secret
        account.apiSecretFile = path
      } catch (error) {
        problems.push(`${label}: cannot read ${path} (${errnoCode(error)})`)
      }
    } else if (account.apiSecret === undefined || account.apiSecret === '') {
      problems.push(`${labels.get(`/accounts/${index}/apiSecret`) as string} is required`)
    }
  })

  const tokenFile = getPath(raw, 'inbound.tokenFile')
  if (typeof tokenFile === 'string' && tokenFile !== '') {
    const label = labelOf('/inbound/tokenFile', labels)
    const path = isAbsolute(tokenFile) ? tokenFile : resolve(cwd, tokenFile)
    setPath(raw, 'inbound.tokenFile', path)
    try {
      const token = readFile(path).replace(/\r?\n$/, '')
      if (token.length < 16) problems.push(`${label}: the token must be at least 16 characters`)
      else setPath(raw, 'inbound.token', token)
    } catch (error) {
      problems.push(`${label}: cannot read ${path} (${errnoCode(error)})`)
    }
  }
  const allow = getPath(raw, 'inbound.allow')
  if (Array.isArray(allow)) {
    for (const block of allow) {
      if (typeof block === 'string' && parseCidr(block) === undefined) problems.push(`${labelOf('/inbound/allow', labels)}: "${block}" is not a CIDR block such as 10.0.0.0/8 or ::1/128`)
    }
  }

  prepareCallers(raw, { cwd, readFile, problems, accountNames: new Set(accounts.map((a) => (isObject(a) ? a.name : undefined))) })

  // Node ignores a CA that is not PEM certificates: check it here, or TLS would fail at the first call.
  const caFile = getPath(raw, 'upstream.caFile')
  if (typeof caFile === 'string' && caFile !== '') {
    const label = labelOf('/upstream/caFile', labels)
    const path = isAbsolute(caFile) ? caFile : resolve(cwd, caFile)
    setPath(raw, 'upstream.caFile', path)
    try {
      if (!holdsCertificates(readFile(path))) problems.push(`${label}: ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
    } catch (error) {
      problems.push(`${label}: cannot read ${path} (${errnoCode(error)})`)
    }
  }

  // TLS on the listener: the files are read here, so buildApp never touches the file system.
  const tlsProblems = isObject(raw.tls) ? readListenerTls(raw.tls, {
    label: (key) => labelOf(`/tls/${key}`, labels),
    resolve: (path) => (isAbsolute(path) ? path : resolve(cwd, path)),
    readFile
  }) : []
  if (tlsProblems.length === 0 && isObject(raw.tls) && raw.tls.cert === undefined) delete raw.tls // an empty `tls:` section
  problems.push(...tlsProblems)

  problems.push(...schemaProblems(raw, labels))
  problems.push(...crossChecks(raw, labels))
  if (problems.length > 0) throw new ConfigError(problems, { listenerTls: tlsProblems.length > 0 })

  if (absoluteConfigFile !== undefined) raw.configFile = absoluteConfigFile
  return deepFreeze(raw) as unknown as Config
}

/** Whether a PEM text holds at least one certificate, and every certificate block in it parses. */
function holdsCertificates (pem: string): boolean {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g) ?? []
  return blocks.length > 0 && blocks.every((block) => {
    try {
      return new X509Certificate(block).raw.length > 0
    } catch {
      return false
    }
  })
}

function readConfigFile (path: string, label: string, readFile: (path: string) => string, problems: string[]): Raw | undefined {
  let text: string
  try {
    text = readFile(path)
  } catch (error) {
    problems.push(`${label}: cannot read ${path} (${errnoCode(error)})`)
    return undefined
  }
  let parsed: unknown
  try {
    parsed = parseYaml(text)
  } catch (error) {
    // yaml's message quotes the offending line, which may hold a secret: report the position only.
    // (yaml's parse errors always carry their position.)
    const position = (error as { linePos: Array<{ line: number, col: number }> }).linePos[0] as { line: number, col: number }
    problems.push(`${label}: ${path} is not valid YAML (line ${position.line}, column ${position.col})`)
    return undefined
  }
  if (parsed === null || parsed === undefined) return {}
  if (!isObject(parsed)) {
    problems.push(`${label}: ${path} must hold a YAML mapping`)
    return undefined
  }
  return parsed
}

/**
 * The environment's PAVE_USERNAME/PAVE_API_KEY/PAVE_API_SECRET[_FILE] define the default
 * account: they override the file's account named `default` (or add it).
 */
function mergeEnvironmentAccount (fileAccounts: Raw[], env: LoadConfigInput['env'] & object, labels: Map<string, string>, problems: string[]): Raw[] {
  const accounts = fileAccounts
  accounts.forEach((account, index) => {
    for (const key of ['name', 'prefix', 'username', 'apiKey', 'apiSecret', 'apiSecretFile']) {
      labels.set(`/accounts/${index}/${key}`, `accounts[${index}].${key}`)
    }
    labels.set(`/accounts/${index}/apiSecret`, `accounts[${index}].apiSecret or apiSecretFile`)
  })

  const fromEnv = {
    username: nonEmpty(env[ACCOUNT_ENV.username]),
    apiKey: nonEmpty(env[ACCOUNT_ENV.apiKey]),
    apiSecret: nonEmpty(env[ACCOUNT_ENV.apiSecret]),
    apiSecretFile: nonEmpty(env[ACCOUNT_ENV.apiSecretFile])
  }
  if (fromEnv.apiSecret !== undefined && fromEnv.apiSecretFile !== undefined) {
    problems.push(`${ACCOUNT_ENV.apiSecret} and ${ACCOUNT_ENV.apiSecretFile} are both set: set one`)
  }
  const anyFromEnv = Object.values(fromEnv).some((v) => v !== undefined)
  if (!anyFromEnv && accounts.length > 0) return accounts

  let index = accounts.findIndex((a) => isObject(a) && a.name === DEFAULT_ACCOUNT_NAME)
  if (index === -1) {
    index = accounts.length
    accounts.push({ name: DEFAULT_ACCOUNT_NAME, prefix: DEFAULT_ACCOUNT_PREFIX })
  }
  const account = accounts[index] as Raw
  if (fromEnv.username !== undefined) account.username = fromEnv.username
  if (fromEnv.apiKey !== undefined) account.apiKey = fromEnv.apiKey
  if (fromEnv.apiSecret !== undefined) {
    account.apiSecret = fromEnv.apiSecret
    delete account.apiSecretFile
  }
  if (fromEnv.apiSecretFile !== undefined) {
    account.apiSecretFile = fromEnv.apiSecretFile
    delete account.apiSecret
  }
  labels.set(`/accounts/${index}/username`, ACCOUNT_ENV.username)
  labels.set(`/accounts/${index}/apiKey`, ACCOUNT_ENV.apiKey)
  labels.set(`/accounts/${index}/apiSecret`, `${ACCOUNT_ENV.apiSecret} (or ${ACCOUNT_ENV.apiSecretFile})`)
  labels.set(`/accounts/${index}/apiSecretFile`, ACCOUNT_ENV.apiSecretFile)
  return accounts
}

const ajv = new Ajv({ allErrors: true, strict: true })
const validate = ajv.compile(CONFIG_SCHEMA)

function schemaProblems (raw: Raw, labels: Map<string, string>): string[] {
  if (validate(raw)) return []
  const problems = new Set<string>()
  for (const error of validate.errors as ErrorObject[]) problems.add(describe(error, labels))
  return [...problems]
}

/** Turns an ajv error into a sentence naming the setting, never its value. */
function describe (error: ErrorObject, labels: Map<string, string>): string {
  if (error.keyword === 'required') {
    const pointer = `${error.instancePath}/${String(error.params.missingProperty)}`
    return `${labelOf(pointer, labels)} is required`
  }
  if (error.keyword === 'additionalProperties') {
    const pointer = `${error.instancePath}/${String(error.params.additionalProperty)}`
    return `${labelOf(pointer, labels)} is not a known setting`
  }
  const label = labelOf(error.instancePath, labels)
  if (error.keyword === 'enum') return `${label} must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`
  if (error.keyword === 'pattern') {
    if (error.instancePath.startsWith('/callers/')) return `${label} must be 1-63 lowercase letters, digits or "-", starting with a letter or digit`
    return error.instancePath.endsWith('/prefix')
      ? `${label} must be "/" or a path like "/test" (letters, digits, "_", "-", ".", "~"; no trailing slash, no dot segments)`
      : `${label} must be 1-63 letters, digits, "_", "-" or ".", starting with a letter or digit`
  }
  if (error.keyword === 'minLength') return `${label} must not be empty`
  return `${label} ${error.message as string}`
}

function labelOf (pointer: string, labels: Map<string, string>): string {
  return labels.get(pointer) ?? pointer.slice(1).replace(/\/(\d+)(?=\/|$)/g, '[$1]').split('/').join('.')
}

function crossChecks (raw: Raw, labels: Map<string, string>): string[] {
  const problems: string[] = []
  const upstreamUrl = getPath(raw, 'upstream.url')
  if (typeof upstreamUrl === 'string' && upstreamUrl !== '') {
    const label = labelOf('/upstream/url', labels)
    let url: URL | undefined
    try {
      url = new URL(upstreamUrl)
    } catch {
      problems.push(`${label} must be an absolute http(s) URL such as https://openapi.paveapi.com`)
    }
    if (url !== undefined) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') problems.push(`${label} must use https: or http:`)
      else if (url.username !== '' || url.password !== '') problems.push(`${label} must not carry credentials`)
      else if (url.pathname !== '/' || url.search !== '' || url.hash !== '') problems.push(`${label} must be an origin (scheme, host and port only), without a path or query`)
    }
  }

  // An egress proxy URL may carry credentials: name the setting, never print the value.
  for (const key of ['httpsProxy', 'httpProxy']) {
    const proxyUrl = getPath(raw, `upstream.egress.${key}`)
    if (typeof proxyUrl !== 'string' || proxyUrl === '') continue
    const label = labelOf(`/upstream/egress/${key}`, labels)
    let url: URL | undefined
    try {
      url = new URL(proxyUrl)
    } catch {
      problems.push(`${label} must be an absolute http(s) URL such as http://proxy.example:3128`)
    }
    if (url !== undefined) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') problems.push(`${label} must use http: or https:`)
      else if (url.pathname !== '/' || url.search !== '' || url.hash !== '') problems.push(`${label} must be a proxy origin (scheme, optional credentials, host and port), without a path or query`)
    }
  }

  // A collector URL: named by its setting, never printed (it may carry a token in its query).
  for (const key of ['endpoint', 'tracesEndpoint']) {
    const endpoint = getPath(raw, `tracing.${key}`)
    if (typeof endpoint !== 'string' || endpoint === '') continue
    const label = labelOf(`/tracing/${key}`, labels)
    let url: URL | undefined
    try {
      url = new URL(endpoint)
    } catch {
      problems.push(`${label} must be an absolute http(s) URL such as http://otel-collector:4318`)
    }
    if (url !== undefined) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') problems.push(`${label} must use http: or https:`)
      else if (url.username !== '' || url.password !== '') problems.push(`${label} must not carry credentials: send them as OTEL_EXPORTER_OTLP_HEADERS`)
    }
  }

  const lifetime = getPath(raw, 'signing.tokenLifetimeSeconds')
  const margin = getPath(raw, 'signing.refreshMarginSeconds')
  if (typeof lifetime === 'number' && typeof margin === 'number' && margin * 2 > lifetime) {
    problems.push(`${labelOf('/signing/refreshMarginSeconds', labels)} must be at most half of ${labelOf('/signing/tokenLifetimeSeconds', labels)}`)
  }

  // Never empty: without accounts in the file, the environment's default account is required.
  const accounts = (raw.accounts as unknown[]).filter(isObject) as Raw[]
  const seenNames = new Set<unknown>()
  const seenPrefixes = new Map<unknown, unknown>()
  for (const account of accounts) {
    if (seenNames.has(account.name)) problems.push(`account "${String(account.name)}": two accounts share this name`)
    seenNames.add(account.name)
    const other = seenPrefixes.get(account.prefix)
    if (other !== undefined) problems.push(`account "${String(account.name)}": prefix ${String(account.prefix)} is already used by account "${String(other)}"`)
    else seenPrefixes.set(account.prefix, account.name)
    if (typeof account.prefix === 'string' && isReservedPath(account.prefix)) {
      problems.push(`account "${String(account.name)}": prefix ${account.prefix} is reserved for the proxy's own endpoints`)
    }
  }
  return problems
}

/** Local endpoints that are never forwarded. */
export const RESERVED_PATHS = ['/healthz', '/readyz', '/metrics'] as const

function isReservedPath (prefix: string): boolean {
  return RESERVED_PATHS.some((path) => prefix === path || prefix.startsWith(path + '/'))
}

/** Converts an environment or flag string; what does not convert stays a string for the schema to report. */
function convert (value: string, type: SettingSource['type']): unknown {
  if (type === 'integer') return toInteger(value)
  if (type === 'number') return /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value
  if (type === 'map') return toMap(value) ?? value
  if (type === 'list') return value.split(',').map((item) => item.trim()).filter((item) => item !== '')
  if (type === 'boolean') return value === 'true' ? true : value === 'false' ? false : value
  return value
}

/** An I/O error's code for a problem line (`ENOENT`, `EACCES`…), never its message. */
function errnoCode (error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error'
}

/**
 * OpenTelemetry's `k=v,k2=v2` lists (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_RESOURCE_ATTRIBUTES`):
 * values percent-decoded, blanks around keys and values trimmed; undefined when malformed.
 */
function toMap (value: string): Record<string, string> | undefined {
  const map: Record<string, string> = {}
  for (const entry of value.split(',')) {
    if (entry.trim() === '') continue
    const at = entry.indexOf('=')
    const key = entry.slice(0, at).trim()
    if (at <= 0 || key === '') return undefined
    try {
      map[key] = decodeURIComponent(entry.slice(at + 1).trim())
    } catch {
      return undefined
    }
  }
  return map
}

function toInteger (value: string): number | string {
  return /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

function isObject (value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function deepMerge (target: Raw, source: Raw): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key]
    if (isObject(existing) && isObject(value)) deepMerge(existing, value)
    else target[key] = value
  }
}

function getPath (raw: Raw, path: string): unknown {
  let node: unknown = raw
  for (const key of path.split('.')) node = isObject(node) ? node[key] : undefined
  return node
}

function setPath (raw: Raw, path: string, value: unknown): void {
  const keys = path.split('.')
  const last = keys.pop() as string
  let node = raw
  for (const key of keys) {
    if (!isObject(node[key])) node[key] = {}
    node = node[key] as Raw
  }
  node[last] = value
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

/** A configuration's accounts, for code that only needs to know who signs. */
export type { AccountConfig }
