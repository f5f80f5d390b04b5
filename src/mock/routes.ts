/**
 * pave-mock's endpoints: sessions, callbacks, hotspots and v2's "Resend SMS",
 * answering with the JSON shapes and messages of PAVE's docs. Every route runs after the signature check,
 * for the account that signed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  CALLBACK_EVENTS, RESEND_MAX_AGE_DAYS, THEMES, type AccountState, type CallbackEvent, type CallbackSetting, type Json, type SessionInput
} from './store.js'

export const MISSING_FIELDS = 'Missing required fields.'
export const NOT_AN_OBJECT = 'The request body must be a JSON object.'

export interface RouteContext {
  /** The state of the API key that signed the request. */
  readonly stateOf: (request: FastifyRequest) => AccountState
  /** The mock's clock, epoch ms. */
  readonly now: () => number
}

type KeyParams = { Params: { key: string } }
type EventParams = { Params: { event: string } }

export function registerRoutes (app: FastifyInstance, { stateOf, now }: RouteContext): void {
  // ---- sessions
  app.post('/v1/sessions', async (request, reply) => {
    const input = sessionInput(request.body)
    if (typeof input === 'string') return badRequest(reply, input)
    return stateOf(request).createSession(input, now())
  })

  app.get<KeyParams>('/v1/sessions/:key', async (request, reply) => {
    return stateOf(request).getSession(request.params.key) ?? sessionNotFound(reply, request.params.key)
  })

  app.put<KeyParams>('/v1/sessions/:key', async (request, reply) => {
    const { key } = request.params
    const state = stateOf(request)
    const session = state.getSession(key)
    if (session === undefined) return sessionNotFound(reply, key)
    if (session.status !== 'IDLE') return badRequest(reply, `Session ${key} has been started and cannot be updated.`)
    const input = sessionInput(request.body, session.options.sms as Json | undefined)
    if (typeof input === 'string') return badRequest(reply, input)
    return state.updateSession(key, input, now())
  })

  app.delete<KeyParams>('/v1/sessions/:key', async (request, reply) => {
    const { key } = request.params
    const state = stateOf(request)
    const session = state.getSession(key)
    if (session === undefined) return sessionNotFound(reply, key)
    if (session.status !== 'IDLE') return badRequest(reply, `Session ${key} has been started and cannot be deleted.`)
    state.sessions.delete(key)
    return { message: `Session ${key} has been successfully removed.` }
  })

  app.get<KeyParams>('/v1/sessions/:key/photos', async (request, reply) => {
    return stateOf(request).photos(request.params.key) ?? sessionNotFound(reply, request.params.key)
  })

  app.get<KeyParams>('/v1/sessions/:key/notes', async (request, reply) => {
    const photos = stateOf(request).photos(request.params.key)
    if (photos === undefined) return sessionNotFound(reply, request.params.key)
    return []
  })

  app.get<KeyParams>('/v1/sessions/:key/results', async (request, reply) => {
    return stateOf(request).results(request.params.key) ?? sessionNotFound(reply, request.params.key)
  })

  // ---- hotspots
  app.post<KeyParams>('/v1/hotspots/:key/photos-url', async (request, reply) => {
    const { key } = request.params
    const state = stateOf(request)
    if (state.getSession(key) === undefined) return sessionNotFound(reply, key)
    const body = request.body
    const photos = isObject(body) ? body.photos : undefined
    if (!Array.isArray(photos) || photos.length === 0 || !photos.every(isPhotoUrl)) return badRequest(reply, MISSING_FIELDS)
    return { session_key: key, photos: state.addPhotos(key, photos, now()) }
  })

  // ---- v2 (authenticated with API-Access-Token instead of a signature, see server.ts)
  app.post<KeyParams>('/v2/capture/sessions/:key/resend', async (request, reply) => {
    const { key } = request.params
    const body = request.body
    const phone = isObject(body) ? body.phone : undefined
    if ((body !== undefined && !isObject(body)) || (phone !== undefined && !nonEmptyString(phone))) {
      return v2Error(reply, 400, { message: 'The body, when given, must be a JSON object with an optional "phone" string.', session_key: key })
    }
    const outcome = stateOf(request).resendSms(key, phone, now())
    switch (outcome.kind) {
      case 'resent':
        return {
          status: 'success',
          message: 'SMS has been resent successfully.',
          session_key: key,
          phone: outcome.phone,
          session_age_days: outcome.ageDays,
          days_remaining: outcome.daysRemaining
        }
      case 'not-found':
        return v2Error(reply, 404, { message: 'Session not found', session_key: key })
      case 'finalized':
        return v2Error(reply, 400, { message: 'The session is finalized: its SMS cannot be resent.', session_key: key, session_status: outcome.status })
      case 'expired':
        return v2Error(reply, 400, { message: `The session is older than ${RESEND_MAX_AGE_DAYS} days: its SMS cannot be resent.`, session_key: key, session_age_days: outcome.ageDays })
      case 'already-resent':
        return v2Error(reply, 400, { message: 'The SMS of this session has already been resent once.', session_key: key })
      case 'no-phone':
        return v2Error(reply, 400, { message: 'No phone number: send "phone", or create the session with sms.to.', session_key: key })
    }
  })

  // ---- callbacks
  app.get('/v1/callbacks', async (request) => {
    const state = stateOf(request)
    return { api_key: state.apiKey, data: [...state.callbacks.values()] }
  })

  app.get<EventParams>('/v1/callbacks/:event', async (request, reply) => {
    const state = stateOf(request)
    const setting = state.callbacks.get(request.params.event as CallbackEvent)
    if (setting === undefined) return callbackNotFound(reply, state, request.params.event)
    return { api_key: state.apiKey, data: setting }
  })

  app.post('/v1/callbacks', async (request, reply) => {
    const state = stateOf(request)
    const body = request.body
    if (!isObject(body) || !nonEmptyString(body.event) || !nonEmptyString(body.url)) return badRequest(reply, MISSING_FIELDS)
    if (!(CALLBACK_EVENTS as readonly string[]).includes(body.event)) return badRequest(reply, 'The selected event is invalid.')
    const event = body.event as CallbackEvent
    if (state.callbacks.has(event)) return badRequest(reply, `Your API Key already has a callback setting for the event ${event}.`)
    const setting: CallbackSetting = { event, url: body.url, method: 'POST', headers: {}, payload: {} }
    applyCallback(setting, body)
    state.callbacks.set(event, setting)
    return { api_key: state.apiKey, ...setting }
  })

  app.put<EventParams>('/v1/callbacks/:event', async (request, reply) => {
    const state = stateOf(request)
    const setting = state.callbacks.get(request.params.event as CallbackEvent)
    if (setting === undefined) return callbackNotFound(reply, state, request.params.event)
    const body = request.body
    if (!isObject(body) || !nonEmptyString(body.url)) return badRequest(reply, MISSING_FIELDS)
    setting.url = body.url
    applyCallback(setting, body)
    return { api_key: state.apiKey, ...setting }
  })

  app.delete<EventParams>('/v1/callbacks/:event', async (request, reply) => {
    const state = stateOf(request)
    const { event } = request.params
    if (!state.callbacks.delete(event as CallbackEvent)) return callbackNotFound(reply, state, event)
    return { api_key: state.apiKey, message: `Callback setting for the event ${event} has been successfully removed.` }
  })
}

/**
 * The optional parts of a create or update body, or the message of a 400. An SMS
 * needs a `to`, given now or before (`currentSms`).
 */
export function sessionInput (body: unknown, currentSms?: Json): SessionInput | string {
  if (body === undefined || body === null) return {}
  if (!isObject(body)) return NOT_AN_OBJECT
  const input: SessionInput = {}
  for (const part of ['session', 'vehicle', 'sms'] as const) {
    const value = body[part]
    if (value === undefined) continue
    if (!isObject(value)) return `The ${part} field must be an object.`
    input[part] = value
  }
  const theme = input.session?.theme
  if (theme !== undefined && !(THEMES as readonly unknown[]).includes(theme)) return `The selected session.theme is invalid (expected ${THEMES.join(', ')}).`
  if (input.sms !== undefined && !nonEmptyString({ ...currentSms, ...input.sms }.to)) return MISSING_FIELDS
  return input
}

function applyCallback (setting: CallbackSetting, body: Json): void {
  if (nonEmptyString(body.method)) setting.method = body.method.toUpperCase()
  if (body.headers !== undefined) setting.headers = body.headers
  if (body.payload !== undefined) setting.payload = body.payload
}

/** A v2 error: `{"status": "error", "message", "session_key", …}`. */
function v2Error (reply: FastifyReply, code: number, fields: Json): FastifyReply {
  return reply.code(code).send({ status: 'error', ...fields })
}

function badRequest (reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ message })
}

function sessionNotFound (reply: FastifyReply, key: string): FastifyReply {
  return reply.code(404).send({ message: `Session ${key} cannot be found.` })
}

function callbackNotFound (reply: FastifyReply, state: AccountState, event: string): FastifyReply {
  return reply.code(404).send({ api_key: state.apiKey, message: `Your API Key does not have callback setting for the event ${event}.` })
}

function isPhotoUrl (value: unknown): boolean {
  return isObject(value) && nonEmptyString(value.photo_label) && nonEmptyString(value.url)
}

function nonEmptyString (value: unknown): value is string {
  return typeof value === 'string' && value !== ''
}

export function isObject (value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
