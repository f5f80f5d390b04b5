/**
 * One `close` listener per response, shared by every stage that must act when the
 * response ends (finished, failed or abandoned by its caller): the access line and
 * request metrics, the admission gate's release, the forwarder's cancel. Each stage
 * registers a function made once (per app or per module) that receives the
 * response; per-request data travels on the response itself. One listener instead of
 * one `once` wrapper and closure per stage per request.
 */
import type { ServerResponse } from 'node:http'

/** What a stage runs when a response closes. */
export type CloseHook = (res: ServerResponse) => void

const kHooks = Symbol('pave-proxy.closeHooks')
type HookedResponse = ServerResponse & { [kHooks]?: CloseHook | CloseHook[] }

/** Runs `hook(res)` once, when `res` closes, after the hooks registered before it. */
export function onResponseClose (res: ServerResponse, hook: CloseHook): void {
  const hooked = res as HookedResponse
  const hooks = hooked[kHooks]
  if (hooks === undefined) {
    hooked[kHooks] = hook
    res.on('close', runHooks)
  } else if (typeof hooks === 'function') {
    hooked[kHooks] = [hooks, hook]
  } else {
    hooks.push(hook)
  }
}

// Node emits a response's `close` once.
function runHooks (this: HookedResponse): void {
  const hooks = this[kHooks] as CloseHook | CloseHook[]
  if (typeof hooks === 'function') {
    hooks(this)
  } else {
    for (const hook of hooks) hook(this)
  }
}
