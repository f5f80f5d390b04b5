/**
 * The audit trail (with `callers` configured, or `audit.file` set): one JSON line for
 * every refusal (401, 403, the proxy's or PAVE's) and every state-changing call (POST,
 * PUT, PATCH, DELETE), written when the response closes:
 *
 * `time` (epoch ms), `reqId` (the `x-request-id` the caller got), `caller`, `proof`
 * (`token`, `clientCert`, `jwt` or null), `remoteAddress`, `account` (null off the
 * account routes), `method`, `path` (without the query), `status`, `code` when the
 * proxy made the answer, `aborted` when the caller left first.
 *
 * To `audit.file` when set (appended, opened once, reopened on SIGHUP so log rotation
 * can move it); otherwise to the log's destination (standard output) in the log line
 * shape, marked `"audit": true`, whatever the log level. Every field is known in
 * advance: no header, token, JWT, certificate or secret can get into a line.
 */
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import { hostname } from 'node:os'
import { pino } from 'pino'

export interface AuditFields {
  readonly reqId: string
  readonly caller: string
  readonly proof: string | undefined
  readonly remoteAddress: string | undefined
  readonly account: string | undefined
  readonly method: string
  readonly path: string
  readonly status: number
  readonly code: string | undefined
  readonly aborted: boolean
}

export interface AuditTrail {
  readonly write: (fields: AuditFields) => void
  /** Reopens the file (after log rotation moved it); nothing to do on standard output. */
  readonly reopen: () => void
  readonly close: () => void
}

/** Methods whose every call is audited. */
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Whether a request belongs in the audit trail. */
export function audited (method: string, status: number): boolean {
  return status === 401 || status === 403 || STATE_CHANGING.has(method)
}

export interface AuditOptions {
  /** The file to append to; undefined: `stdout`. */
  readonly file?: string | undefined
  /** The log's destination. */
  readonly stdout: { write: (line: string) => unknown }
  /** Where a failed write of the file is reported (the trail goes on when it can). */
  readonly logger: { readonly error: (fields: object, message: string) => void }
}

/** Opens the trail; rejects when the file cannot be opened for appending. */
export async function createAuditTrail (options: AuditOptions): Promise<AuditTrail> {
  if (options.file === undefined) {
    const head = `{"level":30,"time":`
    const origin = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"audit":true`
    return {
      write: (f) => { options.stdout.write(`${head}${Date.now()}${origin}${body(f)},"msg":"audit"}\n`) },
      reopen: () => {},
      close: () => {}
    }
  }
  // Opened once here, synchronously, so a path that cannot be appended to stops the start with
  // its own error, before a stream exists (pino flushes its streams at exit, and one that never
  // opened would throw there).
  closeSync(openSync(options.file, 'a'))
  const file = pino.destination({ dest: options.file, append: true, mkdir: false, sync: false })
  await once(file, 'ready')
  /* c8 ignore next -- a write error on a file opened for appending (a full disk) is not provoked in tests: SonicBoom retries such writes */
  file.on('error', (error: Error) => { options.logger.error({ err: error }, 'cannot write the audit file') })
  return {
    write: (f) => { file.write(`{"time":${Date.now()}${body(f)}}\n`) },
    reopen: () => { file.reopen() },
    close: () => { file.end() }
  }
}

function body (f: AuditFields): string {
  return `,"reqId":"${f.reqId}","caller":"${f.caller}","proof":${f.proof !== undefined ? `"${f.proof}"` : 'null'}` +
    `,"remoteAddress":${f.remoteAddress !== undefined ? JSON.stringify(f.remoteAddress) : 'null'}` +
    `,"account":${f.account !== undefined ? `"${f.account}"` : 'null'},"method":"${f.method}","path":${JSON.stringify(f.path)}` +
    `,"status":${f.status}${f.code !== undefined ? `,"code":"${f.code}"` : ''}${f.aborted ? ',"aborted":true' : ''}`
}
