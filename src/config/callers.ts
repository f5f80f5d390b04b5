/**
 * The gateway's `callers:` as the configuration loads them: token and JWKS files
 * read, paths resolved, and every problem named by the caller it belongs to — never
 * a token, never a key. The JSON schema (schema.ts) has already checked the shapes
 * it can; these are the checks it cannot make.
 */
import { isAbsolute, resolve } from 'node:path'
import { parseCidr } from './cidr.js'
import type { JsonWebKeySetConfig } from './schema.js'

type Raw = Record<string, unknown>

/** Shortest bearer token accepted in a caller's token file. */
export const MIN_CALLER_TOKEN_LENGTH = 16

/** Key types a JWKS may hold: public keys of the asymmetric algorithms only. */
const PUBLIC_KEY_TYPES = new Set(['RSA', 'EC', 'OKP'])
/** Members of a JWK that only a private or symmetric key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

/** One literal segment of an allow path: RFC 3986 path characters, no `%`, `;`, `*`. */
const LITERAL_SEGMENT = /^[A-Za-z0-9._~:@!$&'()+,=-]+$/

export interface CallerLoadContext {
  readonly cwd: string
  readonly readFile: (path: string) => string
  readonly problems: string[]
  /** Names of the configured accounts. */
  readonly accountNames: ReadonlySet<unknown>
}

/**
 * Why an allow path cannot be a rule, or `undefined` when it can: `/`, or segments that are
 * literals, `*` (one segment) or — last only — `**` (any rest, none included).
 */
export function pathPatternProblem (pattern: string): string | undefined {
  if (pattern === '/') return undefined
  if (!pattern.startsWith('/')) return 'must start with "/"'
  const segments = pattern.slice(1).split('/')
  for (const [index, segment] of segments.entries()) {
    if (segment === '**') {
      if (index !== segments.length - 1) return '"**" may only be the last segment'
    } else if (segment !== '*' && (!LITERAL_SEGMENT.test(segment) || segment === '.' || segment === '..')) {
      return 'must be segments of letters, digits and "-._~:@!$&\'()+,=", "*" (one segment) or a last "**" (any rest); no empty, dot or percent-encoded segments'
    }
  }
  return undefined
}

/** The public keys of a JWKS document, or why it is not one (never quoting a key). */
export function publicJwks (value: unknown): JsonWebKeySetConfig | string {
  if (typeof value !== 'object' || value === null || !Array.isArray((value as Raw).keys)) return 'is not a JWKS (a JSON object with a "keys" list)'
  const keys = (value as { keys: unknown[] }).keys
  if (keys.length === 0) return 'holds no key'
  for (const key of keys) {
    if (typeof key !== 'object' || key === null) return 'holds a key that is not a JSON object'
    const jwk = key as Raw
    if (typeof jwk.kty !== 'string' || !PUBLIC_KEY_TYPES.has(jwk.kty)) return 'holds a key that is not an RSA, EC or OKP public key (symmetric keys are never accepted)'
    if (PRIVATE_MEMBERS.some((member) => member in jwk)) return 'holds private key material: give the public keys only'
  }
  return { keys: keys as Array<Record<string, unknown>> }
}

/** Reads and checks every caller in `raw.callers` in place; problems go to `context.problems`. */
export function prepareCallers (raw: Raw, context: CallerLoadContext): void {
  const { problems } = context
  const callers = raw.callers
  const metrics = raw.metrics as Raw | undefined
  if (callers === undefined) {
    if (metrics !== undefined && metrics.callers !== undefined) problems.push('metrics.callers needs callers: it names callers allowed to read /metrics')
    return
  }
  if (!Array.isArray(callers)) return // the schema reports it
  const inbound = raw.inbound as Raw
  if (inbound.tokenFile !== undefined) problems.push('inbound.tokenFile (PAVE_PROXY_TOKEN_FILE) cannot be combined with callers: give the token to a caller (tokenFile)')

  const names = new Set<unknown>()
  const tokenOwners = new Map<string, unknown>()
  callers.forEach((caller: unknown, index) => {
    if (typeof caller !== 'object' || caller === null) return
    const entry = caller as Raw
    const who = typeof entry.name === 'string' ? `caller "${entry.name}"` : `callers[${index}]`
    if (names.has(entry.name)) problems.push(`${who}: two callers share this name`)
    names.add(entry.name)
    // Filled in from the files below: never written in the configuration itself.
    if (entry.tokens !== undefined) problems.push(`${who}: tokens is not a known setting (use tokenFile)`)
    if (isRaw(entry.jwt) && entry.jwt.jwks !== undefined) problems.push(`${who}: jwt.jwks is not a known setting (use jwt.jwksFile or jwt.jwksUrl)`)
    if (entry.clientCert !== undefined && !(isRaw(raw.tls) && raw.tls.clientCaFile !== undefined)) {
      problems.push(`${who}: clientCert needs TLS on the listener with a client CA (tls.clientCaFile)`)
    }
    if (entry.tokenFile === undefined && entry.clientCert === undefined && entry.jwt === undefined) {
      problems.push(`${who}: needs a proof: tokenFile, clientCert or jwt`)
    }
    if (typeof entry.tokenFile === 'string' && entry.tokenFile !== '') {
      const path = absolute(entry.tokenFile, context.cwd)
      entry.tokenFile = path
      const tokens = readTokens(path, who, context)
      if (tokens !== undefined) {
        entry.tokens = tokens
        for (const token of tokens) {
          const owner = tokenOwners.get(token)
          if (owner !== undefined && owner !== entry.name) problems.push(`${who}: a token in its tokenFile is also in the tokenFile of caller "${String(owner)}"`)
          tokenOwners.set(token, entry.name)
        }
      }
    }
    if (isRaw(entry.jwt) && entry.jwt.jwks === undefined) prepareJwt(entry.jwt, who, context)
    if (Array.isArray(entry.from)) {
      for (const block of entry.from) {
        if (typeof block === 'string' && parseCidr(block) === undefined) problems.push(`${who}: from: "${block}" is not a CIDR block such as 10.0.0.0/8 or ::1/128`)
      }
    }
    if (Array.isArray(entry.accounts)) {
      for (const account of entry.accounts) {
        if (typeof account === 'string' && !context.accountNames.has(account)) problems.push(`${who}: accounts: no account is named "${account}"`)
      }
    }
    if (Array.isArray(entry.allow)) {
      for (const rule of entry.allow) {
        const paths = typeof rule === 'object' && rule !== null ? (rule as Raw).paths : undefined
        if (!Array.isArray(paths)) continue
        for (const path of paths) {
          const problem = typeof path === 'string' ? pathPatternProblem(path) : undefined
          if (problem !== undefined) problems.push(`${who}: allow path "${String(path)}" ${problem}`)
        }
      }
    }
  })
  if (metrics !== undefined && Array.isArray(metrics.callers)) {
    for (const name of metrics.callers) {
      if (!names.has(name)) problems.push(`metrics.callers: no caller is named "${String(name)}"`)
    }
  }
  const audit = raw.audit as Raw | undefined
  if (audit !== undefined && typeof audit.file === 'string' && audit.file !== '') audit.file = absolute(audit.file, context.cwd)
}

function readTokens (path: string, who: string, context: CallerLoadContext): string[] | undefined {
  let text: string
  try {
    text = context.readFile(path)
  } catch (error) {
    context.problems.push(`${who}: tokenFile: cannot read ${path} (${errnoCode(error)})`)
    return undefined
  }
  const tokens = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '')
  if (tokens.length === 0) {
    context.problems.push(`${who}: tokenFile: ${path} holds no token`)
    return undefined
  }
  if (tokens.some((token) => token.length < MIN_CALLER_TOKEN_LENGTH || /\s/.test(token))) {
    context.problems.push(`${who}: tokenFile: every token in ${path} must be at least ${MIN_CALLER_TOKEN_LENGTH} characters, without spaces`)
    return undefined
  }
  return [...new Set(tokens)]
}

function prepareJwt (jwt: Raw, who: string, context: CallerLoadContext): void {
  const { problems } = context
  if ((jwt.jwksFile === undefined) === (jwt.jwksUrl === undefined)) {
    problems.push(`${who}: jwt needs one of jwksFile or jwksUrl`)
    return
  }
  if (typeof jwt.jwksUrl === 'string') {
    let url: URL | undefined
    try {
      url = new URL(jwt.jwksUrl)
    } catch {
      problems.push(`${who}: jwt.jwksUrl must be an absolute https: URL`)
    }
    if (url !== undefined) {
      if (url.protocol !== 'https:') problems.push(`${who}: jwt.jwksUrl must use https:`)
      else if (url.username !== '' || url.password !== '') problems.push(`${who}: jwt.jwksUrl must not carry credentials`)
    }
    return
  }
  if (typeof jwt.jwksFile !== 'string' || jwt.jwksFile === '') return // the schema reports it
  const path = absolute(jwt.jwksFile, context.cwd)
  jwt.jwksFile = path
  let parsed: unknown
  try {
    parsed = JSON.parse(context.readFile(path))
  } catch (error) {
    problems.push(`${who}: jwt.jwksFile: ${error instanceof SyntaxError ? `${path} is not JSON` : `cannot read ${path} (${errnoCode(error)})`}`)
    return
  }
  const jwks = publicJwks(parsed)
  if (typeof jwks === 'string') problems.push(`${who}: jwt.jwksFile: ${path} ${jwks}`)
  else jwt.jwks = jwks
}

function isRaw (value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function absolute (path: string, cwd: string): string {
  return isAbsolute(path) ? path : resolve(cwd, path)
}

function errnoCode (error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error'
}
