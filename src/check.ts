/**
 * `pave-proxy check`: calls PAVE once per account with a harmless read
 * (`GET /v1/callbacks`) and reports whether the credentials are accepted, and how
 * far this host's clock is from PAVE's.
 *
 * It signs with the proxy's own signer and connects through the proxy's own pool
 * (timeouts, private CA, egress proxy), so what it checks is what the proxy does:
 * with clock-skew correction on, a 403 answered by a clock that is off by more
 * than the re-mint threshold is re-signed once with PAVE's clock, as the proxy would.
 *
 * When PAVE refuses an account (401/403), the other `API-Timestamp` forms are tried,
 * each once, until one is accepted: the account's second line names the form PAVE
 * accepted and the setting that selects it (or that none was, so the credentials or
 * the clock are the likelier cause). The configuration in force is still refused:
 * exit 1.
 *
 * Output: one line per account (two when it was refused), never a secret or a
 * token. Exit code: 0 when every account is accepted, 1 otherwise.
 */
import type { Writable } from 'node:stream'
import { request, type Dispatcher } from 'undici'
import type { AccountConfig, Config } from './config/schema.js'
import { classifyUpstreamError } from './errors.js'
import { CLOCK_SKEW_MAX_OFFSET_MS } from './signing/clock-skew.js'
import { OFFSET_CHANGE_REMINT_MS, Signer } from './signing/signer.js'
import { TIMESTAMP_FORMATS, formatTimestamp, type TimestampFormat } from './signing/pave-token.js'
import { createDispatcher, describeEgress } from './upstream/dispatcher.js'

/** The harmless read each account is checked with. */
export const CHECK_PATH = '/v1/callbacks'
/** At most this much of a refusal's body is read to find PAVE's message. */
export const CHECK_BODY_LIMIT = 16 * 1024
/** PAVE's message is shortened to this many characters. */
export const CHECK_MESSAGE_LIMIT = 300

export interface CheckOptions {
  /** Local wall clock, epoch ms. Default `Date.now`. */
  readonly now?: () => number
  /** The upstream pool. Default: one built from `config.upstream`, closed at the end. */
  readonly dispatcher?: Dispatcher
}

/** What one call to PAVE told. */
export type Probe =
  | { readonly kind: 'answered', readonly status: number, readonly message: string | undefined, readonly offsetMs: number | undefined }
  | { readonly kind: 'unreachable', readonly cause: string }

export async function runCheck (config: Config, out: Writable, options: CheckOptions = {}): Promise<number> {
  const now = options.now ?? Date.now
  const dispatcher = options.dispatcher ?? createDispatcher(config.upstream)
  const correction = config.signing.clockSkewCorrection
  const warnMs = config.signing.clockSkewWarnSeconds * 1000
  let offsetMs = 0
  const signerFor = (timestampFormat: TimestampFormat): Signer => new Signer({
    tokenLifetimeSeconds: config.signing.tokenLifetimeSeconds,
    refreshMarginSeconds: config.signing.refreshMarginSeconds,
    now,
    clockOffsetMs: () => offsetMs,
    timestampFormat
  })
  const configured = config.signing.timestampFormat
  const signer = signerFor(configured)
  const others = TIMESTAMP_FORMATS.filter((format) => format !== configured).map(signerFor)
  const write = (line: string): void => { out.write(line + '\n') }

  const egress = describeEgress(config.upstream.egress)
  const count = plural(config.accounts.length, 'account')
  write(`configuration is valid: ${count} → ${config.upstream.url}${egress !== undefined ? ` (egress proxy: ${egress})` : ''}`)

  let accepted = 0
  try {
    for (const account of config.accounts) {
      let probe = await call(account, config.upstream.url, signer, dispatcher, now)
      let resigned = false
      if (probe.kind === 'answered' && probe.offsetMs !== undefined && correction && Math.abs(probe.offsetMs) <= CLOCK_SKEW_MAX_OFFSET_MS) {
        const moved = Math.abs(probe.offsetMs - offsetMs) > OFFSET_CHANGE_REMINT_MS
        offsetMs = probe.offsetMs
        if (probe.status === 403 && moved) {
          probe = await call(account, config.upstream.url, signer, dispatcher, now)
          resigned = true
        }
      }
      const { ok, text } = verdict(probe, resigned, warnMs)
      if (ok) accepted++
      write(`${account.name} (${account.prefix}): ${text}`)
      if (probe.kind === 'answered' && (probe.status === 401 || probe.status === 403)) {
        write(`${account.name} (${account.prefix}): ${await otherFormats(account, config.upstream.url, configured, others, dispatcher, now)}`)
      }
    }
  } finally {
    if (options.dispatcher === undefined) await dispatcher.close()
  }

  const total = config.accounts.length
  write(accepted === total ? `check passed: ${count} accepted` : `check failed: ${accepted} of ${count} accepted`)
  return accepted === total ? 0 : 1
}

/**
 * Tries the other `API-Timestamp` forms, each once, until PAVE accepts one; says
 * which, and the setting that selects it.
 */
async function otherFormats (account: AccountConfig, origin: string, configured: TimestampFormat, signers: readonly Signer[], dispatcher: Dispatcher, now: () => number): Promise<string> {
  for (const signer of signers) {
    const probe = await call(account, origin, signer, dispatcher, now)
    if (probe.kind === 'answered' && probe.status >= 200 && probe.status < 300) {
      const format = signer.timestampFormat
      return `PAVE accepts API-Timestamp as ${format} (${formatTimestamp(new Date(Date.UTC(2023, 1, 11, 12)), format)}), not ${configured}: ` +
        `set signing.timestampFormat: ${format} (PAVE_TIMESTAMP_FORMAT=${format})`
    }
  }
  return `no other API-Timestamp form was accepted either (tried ${signers.map((s) => s.timestampFormat).join(', ')}): the credentials or the clock are the likelier cause`
}

/** One signed `GET /v1/callbacks`. */
async function call (account: AccountConfig, origin: string, signer: Signer, dispatcher: Dispatcher, now: () => number): Promise<Probe> {
  const signed = signer.sign(account)
  const sentAt = now()
  let response: Dispatcher.ResponseData
  try {
    response = await request(new URL(CHECK_PATH, origin), {
      dispatcher,
      method: 'GET',
      headers: { ...signed, accept: 'application/json' }
    })
  } catch (error) {
    return { kind: 'unreachable', cause: describeFailure(error) }
  }
  const receivedAt = now()
  const date = response.headers.date
  const offsetMs = measureOffset(typeof date === 'string' ? date : undefined, sentAt, receivedAt)
  const status = response.statusCode
  if (status >= 200 && status < 300) {
    await response.body.dump()
    return { kind: 'answered', status, message: undefined, offsetMs }
  }
  let message: string | undefined
  try {
    message = extractMessage(await readLimited(response.body, CHECK_BODY_LIMIT), [signed['api-token'], account.apiSecret])
  } catch {
    message = undefined // the body broke off: the status still tells
  }
  return { kind: 'answered', status, message, offsetMs }
}

function verdict (probe: Probe, resigned: boolean, warnMs: number): { ok: boolean, text: string } {
  if (probe.kind === 'unreachable') return { ok: false, text: `unreachable: ${probe.cause}` }
  const clock = describeOffset(probe.offsetMs, warnMs)
  const said = probe.message !== undefined ? probe.message : `HTTP ${probe.status} without a message`
  if (probe.status >= 200 && probe.status < 300) {
    return { ok: true, text: `accepted${resigned ? ' after re-signing with PAVE\'s clock' : ''}, ${clock}` }
  }
  if (probe.status === 401 || probe.status === 403) return { ok: false, text: `rejected: ${said}, ${clock}` }
  return { ok: false, text: `unexpected answer: HTTP ${probe.status}${probe.message !== undefined ? `: ${probe.message}` : ''}, ${clock}` }
}

/** Upstream clock minus local clock, from one exchange (`Date` has whole seconds: its middle is taken). */
export function measureOffset (dateHeader: string | undefined, sentAt: number, receivedAt: number): number | undefined {
  if (dateHeader === undefined) return undefined
  const upstreamTime = Date.parse(dateHeader)
  if (Number.isNaN(upstreamTime)) return undefined
  return Math.round(upstreamTime + 500 - (sentAt + receivedAt) / 2)
}

/** `clock offset +0.4 s`, with a warning beyond the configured threshold. */
export function describeOffset (offsetMs: number | undefined, warnMs: number): string {
  if (offsetMs === undefined) return 'clock offset unknown (no usable Date header)'
  const text = `clock offset ${offsetMs < 0 ? '-' : '+'}${(Math.abs(offsetMs) / 1000).toFixed(1)} s`
  return Math.abs(offsetMs) > warnMs ? `${text} (beyond the ${warnMs / 1000} s warning threshold: check this host's time sync)` : text
}

/** The innermost error code of a failure and the proxy's code for it; no message (it could name internal addresses). */
function describeFailure (error: unknown): string {
  let code: string | undefined
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    code = (current as NodeJS.ErrnoException).code ?? code
  }
  const proxyCode = classifyUpstreamError(error)
  return code !== undefined ? `${code} (${proxyCode})` : proxyCode
}

async function readLimited (body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    chunks.push(chunk)
    size += chunk.length
    if (size >= limit) break
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8')
}

/** PAVE's `message` (or the body's text), on one line, shortened, with anything secret blanked. */
export function extractMessage (body: string, secrets: readonly string[]): string | undefined {
  let message = body
  try {
    const parsed = JSON.parse(body) as unknown
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { message?: unknown }).message === 'string') {
      message = (parsed as { message: string }).message
    }
  } catch {
    // not JSON: the text itself
  }
  for (const secret of secrets) message = message.split(secret).join('[redacted]')
  // eslint-disable-next-line no-control-regex
  message = message.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim()
  if (message === '') return undefined
  return message.length > CHECK_MESSAGE_LIMIT ? message.slice(0, CHECK_MESSAGE_LIMIT - 1) + '…' : message
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}
