/**
 * Everything the suite saw, for the one check that matters at the end: neither an
 * account's secret nor any token the proxy minted appears in any log line, response
 * head or response body. Every proxy, upstream and request in test/hostile and
 * test/faults goes through a watch, and every file ends with {@link SecretWatch.check}.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request, type Dispatcher } from 'undici'
import { startProxy, type StartProxyOptions, type TestProxy } from '../../helpers/proxy.js'
import { ACCOUNT, startUpstream, type TestAccount, type TestUpstream, type UpstreamOptions } from '../../helpers/upstream.js'
import { rawRequest, type RawAnswer } from '../../helpers/raw-http.js'

/** Bodies are kept up to this many bytes each for the final scan; every chunk is also scanned as it arrives. */
const KEPT_PER_BODY = 256 * 1024
const TOKEN_IN_HEADERS = /api-token: *([0-9a-f]{64})/gi

export interface WatchedResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** Set when the body ended in an error (an aborted response). */
  bodyError?: string | undefined
}

export class SecretWatch {
  /** Secrets of every account in play. */
  readonly secrets = new Set<string>([ACCOUNT.secret])
  /** Tokens seen on their way upstream. */
  readonly tokens = new Set<string>()
  readonly logs: string[][] = []
  readonly seen: string[] = []
  readonly upstreams: TestUpstream[] = []
  /** Counts, for the report. */
  responses = 0
  #early: string[] = []

  addAccount (account: TestAccount): void {
    this.secrets.add(account.secret)
  }

  /** Something a caller received (or the proxy printed); scanned at once for known needles, kept for the end. */
  saw (text: string): void {
    this.#scanNow(text)
    this.seen.push(text.length > KEPT_PER_BODY ? text.slice(0, KEPT_PER_BODY / 2) + text.slice(-KEPT_PER_BODY / 2) : text)
  }

  /** Tokens in raw bytes an upstream received. */
  harvest (raw: string): void {
    for (const match of raw.matchAll(TOKEN_IN_HEADERS)) this.tokens.add(match[1] as string)
  }

  #scanNow (text: string): void {
    for (const needle of this.#needles()) if (text.includes(needle)) this.#early.push(needle.slice(0, 6))
  }

  #needles (): string[] {
    for (const upstream of this.upstreams) {
      for (const received of upstream.received) {
        const token = received.headers['api-token']
        if (typeof token === 'string' && /^[0-9a-f]{64}$/.test(token)) this.tokens.add(token)
      }
    }
    return [...this.secrets, ...this.tokens]
  }

  async proxy (options: StartProxyOptions): Promise<TestProxy> {
    if (options.account !== undefined) this.addAccount(options.account)
    const proxy = await startProxy(options)
    for (const account of proxy.config.accounts) this.secrets.add(account.apiSecret)
    this.logs.push(proxy.logs)
    return proxy
  }

  async upstream (options: UpstreamOptions = {}): Promise<TestUpstream> {
    for (const account of options.accounts ?? []) this.addAccount(account)
    const upstream = await startUpstream(options)
    this.upstreams.push(upstream)
    return upstream
  }

  /** An undici request whose whole answer is recorded; an aborted body is reported, not thrown. */
  async request (url: string, options: Parameters<typeof request>[1] = {}): Promise<WatchedResponse> {
    const res = await request(url, options as Dispatcher.RequestOptions)
    this.responses++
    this.saw(JSON.stringify(res.headers))
    const chunks: Buffer[] = []
    let kept = 0
    let bodyError: string | undefined
    try {
      for await (const chunk of res.body) {
        const buffer = chunk as Buffer
        this.#scanNow(buffer.toString('latin1'))
        if (kept < KEPT_PER_BODY) { chunks.push(buffer); kept += buffer.length }
      }
    } catch (error) {
      bodyError = (error as NodeJS.ErrnoException).code ?? 'error'
    }
    const body = Buffer.concat(chunks).toString('utf8')
    this.seen.push(body)
    return { status: res.statusCode, headers: res.headers, body, bodyError }
  }

  /** {@link rawRequest}, recorded. */
  async raw (port: number, text: string | Buffer, timeoutMs = 5_000, untilClose = false): Promise<RawAnswer> {
    const answer = await rawRequest(port, text, timeoutMs, untilClose)
    this.responses++
    this.saw(answer.text)
    return answer
  }

  /** The final assertion of a file. */
  check (t: Test): void {
    const needles = this.#needles()
    t.ok(this.secrets.size > 0, 'secrets known')
    const everything = [...this.logs.flat(), ...this.seen]
    const places: string[] = []
    for (const needle of needles) {
      for (const text of everything) {
        const at = text.indexOf(needle)
        // Where, with the needle itself masked, so a failure does not print it either.
        if (at !== -1) places.push(text.slice(Math.max(0, at - 120), at).replace(/\s+/g, ' ') + '<secret or token>')
      }
    }
    t.same([...places, ...this.#early.map((n) => `seen while streaming: ${n}…`)], [],
      `no secret or minted token in ${this.logs.flat().length} log lines and ${this.seen.length} recorded responses (${this.secrets.size} secrets, ${this.tokens.size} tokens)`)
  }
}

/** Writes a YAML configuration file and returns its path. */
export function yamlConfig (lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-hostile-'))
  const path = join(dir, 'pave-proxy.yaml')
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** `promise`'s value, or `fallback` after `ms` (the timer is cleared either way, so it never holds the process). */
export async function within<T> (promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<T>((resolve) => { timer = setTimeout(() => resolve(fallback), ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}
