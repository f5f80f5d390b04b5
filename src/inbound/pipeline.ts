/**
 * The inbound pipeline: the ordered stages every request passes before it is
 * accepted — target check → caller identity → policy → rate limits → admission
 * gate — built once from the configuration. Each stage answers "pass" or "refuse
 * with this code"; the first refusal answers the caller, and no later stage runs,
 * so a refused request never costs a place in the gate, a limiter round trip or a
 * signature.
 *
 * A stage is synchronous unless it must wait (a Redis round trip, a place in the
 * queue): the pipeline then waits for its promise. Requests whose stages all
 * answer at once never allocate a promise.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorCode } from '../errors.js'
import { sendError } from '../reply-error.js'

/** A stage's refusal: the proxy's error code, and headers the answer carries (`Retry-After`, …). */
export interface Refusal {
  readonly code: ErrorCode
  readonly headers?: Readonly<Record<string, string>>
}

/** `undefined` lets the request pass to the next stage. */
export type StageVerdict = Refusal | undefined

export interface InboundStage {
  /** For logs and the price list of the benchmarks. */
  readonly name: string
  readonly check: (request: FastifyRequest, reply: FastifyReply) => StageVerdict | Promise<StageVerdict>
}

/** Refusals without headers, made once. */
const REFUSALS = new Map<ErrorCode, Refusal>()
export function refusal (code: ErrorCode): Refusal {
  let made = REFUSALS.get(code)
  if (made === undefined) REFUSALS.set(code, made = Object.freeze({ code }))
  return made
}

export type InboundPipeline = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void

/**
 * Told of every wait: the stage, when it began (`performance.now()`) and its outcome
 * (`passed` or the refusal's code). Tracing makes a span of it; called on waits only.
 */
export type WaitObserver = (request: FastifyRequest, stage: string, startedAt: number, outcome: string) => void

/** The stages as one `onRequest` hook; `done` runs once every stage has passed. */
export function createInboundPipeline (stages: readonly InboundStage[], observer?: WaitObserver): InboundPipeline {
  const count = stages.length
  const run = (from: number, request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    for (let i = from; i < count; i++) {
      const verdict = (stages[i] as InboundStage).check(request, reply)
      if (verdict === undefined) continue
      if (verdict instanceof Promise) {
        const startedAt = observer !== undefined ? performance.now() : 0
        verdict.then((settled) => {
          observer?.(request, (stages[i] as InboundStage).name, startedAt, settled === undefined ? 'passed' : settled.code)
          if (settled === undefined) run(i + 1, request, reply, done)
          else refuse(reply, settled)
        }, (error: unknown) => {
          observer?.(request, (stages[i] as InboundStage).name, startedAt, 'PAVE_PROXY_INTERNAL')
          request.log.error({ err: error, stage: (stages[i] as InboundStage).name }, 'inbound stage failed')
          refuse(reply, refusal('PAVE_PROXY_INTERNAL'))
        })
        return
      }
      refuse(reply, verdict)
      return
    }
    done()
  }
  return (request, reply, done) => { run(0, request, reply, done) }
}

function refuse (reply: FastifyReply, verdict: Refusal): void {
  // The caller may have gone while a stage waited.
  if (reply.raw.destroyed) return
  if (verdict.headers !== undefined) void reply.headers(verdict.headers)
  sendError(reply, verdict.code)
}
