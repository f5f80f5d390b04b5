/**
 * pave-mock's state, in memory and per API key: sessions (with their photos) and
 * callbacks, in the JSON shapes PAVE's docs show.
 */
import { randomInt } from 'node:crypto'

/**
 * A session's life: created `IDLE`, `IN_PROGRESS` once the user starts (the mock's
 * name for PAVE's `STARTED`/`PROCESS`), `COMPLETE` with results; PAVE's other
 * documented statuses can be set too (`setSessionStatus`).
 */
export const SESSION_STATUSES = ['IDLE', 'IN_PROGRESS', 'STARTED', 'PROCESS', 'QC_PASSED', 'CONFIRM', 'COMPLETE', 'EXPIRED', 'INVALID'] as const
export type SessionStatus = typeof SESSION_STATUSES[number]

/** Statuses after which an SMS is no longer resent (v2 resend). */
export const FINALIZED_STATUSES: readonly SessionStatus[] = ['QC_PASSED', 'CONFIRM', 'COMPLETE', 'EXPIRED']
/** A session older than this many days gets no resent SMS. */
export const RESEND_MAX_AGE_DAYS = 7
const DAY_MS = 86_400_000

/** What a v2 resend request came to. */
export type ResendOutcome =
  | { readonly kind: 'resent', readonly phone: string, readonly ageDays: number, readonly daysRemaining: number }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'finalized', readonly status: SessionStatus }
  | { readonly kind: 'expired', readonly ageDays: number }
  | { readonly kind: 'already-resent' }
  | { readonly kind: 'no-phone' }

export const THEMES = ['LITE', 'PRO', 'CAPT'] as const
export const DEFAULT_THEME = 'PRO'
export const DEFAULT_LANGUAGE = 'EN'

/** The events a callback can be set for, one callback per event per API key. */
export const CALLBACK_EVENTS = ['SESSION:SMS_PROCESS', 'SESSION:STAGE_CHANGE', 'SESSION:STATUS_CHANGE', 'SESSION:COMPLETE'] as const
export type CallbackEvent = typeof CALLBACK_EVENTS[number]

export type Json = Record<string, unknown>

export interface Photo {
  photo_code: number
  photo_label: string
  url: string
  approved: boolean
  approved_message: string
  created_at: string
  updated_at: string
}

/** A session as `GET /v1/sessions/:session_key` shows it. */
export interface SessionView {
  session_key: string
  theme: string
  active: boolean
  status: SessionStatus
  redirect_url: string | null
  inspect_started_at: string | null
  inspect_ended_at: string | null
  created_at: string
  updated_at: string
  language: string
  options: Json
  vehicle: Json | null
}

interface StoredSession {
  view: SessionView
  photos: Photo[]
  /** Creation time on the mock's clock, epoch ms (a session's age for the v2 resend). */
  readonly createdAtMs: number
  /** Whether the one v2 resend was used. */
  resent: boolean
}

export interface CallbackSetting {
  event: CallbackEvent
  url: string
  method: string
  headers: unknown
  payload: unknown
}

/** The body of a create or update: each part optional, already checked to be objects. */
export interface SessionInput {
  session?: Json | undefined
  vehicle?: Json | undefined
  sms?: Json | undefined
}

const SESSION_KEY_PREFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const SESSION_KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
/** The shape of a session key, e.g. `UCB-C3NPR4AGQZ`. */
export const SESSION_KEY_PATTERN = /^[A-Z]{3}-[A-Z0-9]{10}$/

/** Photos a session shows once the user has "captured" them (see {@link MockStore.setSessionStatus}). */
const SAMPLE_PHOTO_LABELS = ['VIN', 'Interior', 'Cluster', 'Left', 'Front_Left', 'Front', 'Front_Right', 'Right', 'Rear']

/** PAVE's session times: `2021-05-25T11:50:49.000000Z`. */
export function sessionTime (ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z')
}

/** PAVE's photo times: `2021-05-27T07:36:16+00:00`. */
export function photoTime (ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + '+00:00'
}

function randomString (alphabet: string, length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)]
  return out
}

export function newSessionKey (): string {
  return `${randomString(SESSION_KEY_PREFIX_ALPHABET, 3)}-${randomString(SESSION_KEY_ALPHABET, 10)}`
}

/** The state of one API key. */
export class AccountState {
  readonly apiKey: string
  readonly sessions = new Map<string, StoredSession>()
  readonly callbacks = new Map<CallbackEvent, CallbackSetting>()
  private nextVehicleId = 19880

  constructor (apiKey: string) {
    this.apiKey = apiKey
  }

  createSession (input: SessionInput, nowMs: number): SessionView {
    let key: string
    do key = newSessionKey(); while (this.sessions.has(key))
    const now = sessionTime(nowMs)
    const view: SessionView = {
      session_key: key,
      theme: DEFAULT_THEME,
      active: true,
      status: 'IDLE',
      redirect_url: null,
      inspect_started_at: null,
      inspect_ended_at: null,
      created_at: now,
      updated_at: now,
      language: DEFAULT_LANGUAGE,
      options: {},
      vehicle: null
    }
    this.apply(view, input)
    this.sessions.set(key, { view, photos: [], createdAtMs: nowMs, resent: false })
    return view
  }

  getSession (key: string): SessionView | undefined {
    return this.sessions.get(key)?.view
  }

  /** Updates a session; the caller has checked that it exists and is still `IDLE`. */
  updateSession (key: string, input: SessionInput, nowMs: number): SessionView {
    const view = (this.sessions.get(key) as StoredSession).view
    this.apply(view, input)
    view.updated_at = sessionTime(nowMs)
    return view
  }

  photos (key: string): Photo[] | undefined {
    return this.sessions.get(key)?.photos
  }

  addPhotos (key: string, photos: ReadonlyArray<{ photo_label: string, url: string }>, nowMs: number): Photo[] {
    const stored = this.sessions.get(key) as StoredSession
    const at = photoTime(nowMs)
    const added = photos.map((p, i) => ({
      photo_code: stored.photos.length + i + 1,
      photo_label: p.photo_label,
      url: p.url,
      approved: true,
      approved_message: 'ACCEPTED',
      created_at: at,
      updated_at: at
    }))
    stored.photos.push(...added)
    if (stored.view.status === 'IDLE') setStatus(stored, 'IN_PROGRESS', nowMs)
    return added
  }

  setSessionStatus (key: string, status: SessionStatus, nowMs: number): boolean {
    const stored = this.sessions.get(key)
    if (stored === undefined) return false
    setStatus(stored, status, nowMs)
    return true
  }

  /**
   * PAVE's v2 "Resend SMS": once per session, to `phone` or the session's `sms.to`,
   * for a session at most {@link RESEND_MAX_AGE_DAYS} days old and not finalized.
   */
  resendSms (key: string, phone: string | undefined, nowMs: number): ResendOutcome {
    const stored = this.sessions.get(key)
    if (stored === undefined) return { kind: 'not-found' }
    const { status } = stored.view
    if (FINALIZED_STATUSES.includes(status)) return { kind: 'finalized', status }
    const ageMs = Math.max(0, nowMs - stored.createdAtMs)
    const ageDays = Math.floor(ageMs / DAY_MS)
    if (ageMs > RESEND_MAX_AGE_DAYS * DAY_MS) return { kind: 'expired', ageDays }
    if (stored.resent) return { kind: 'already-resent' }
    const to = phone ?? (stored.view.options.sms as Json | undefined)?.to
    if (typeof to !== 'string' || to === '') return { kind: 'no-phone' }
    stored.resent = true
    return { kind: 'resent', phone: to, ageDays, daysRemaining: RESEND_MAX_AGE_DAYS - ageDays }
  }

  /** The inspection results: the documented `SESSION:COMPLETE` shape once complete, a status note before. */
  results (key: string): Json | undefined {
    const stored = this.sessions.get(key)
    if (stored === undefined) return undefined
    const { view, photos } = stored
    if (view.status !== 'COMPLETE') {
      return { session_key: key, status: view.status, message: `Session ${key} has not been completed yet.` }
    }
    const { vehicle, ...session } = view
    return {
      event: 'SESSION:COMPLETE',
      session,
      vehicle,
      photos,
      location: null,
      inspection: { damage_count: 0, max_grade: 0, damages: [] },
      condition_report: { url: `https://reports.pave-mock.invalid/${key}.pdf` }
    }
  }

  private apply (view: SessionView, input: SessionInput): void {
    const { theme, redirect_url: redirectUrl, language, ...options } = input.session ?? {}
    if (typeof theme === 'string') view.theme = theme
    if (typeof redirectUrl === 'string') view.redirect_url = redirectUrl
    if (typeof language === 'string') view.language = language.toUpperCase()
    Object.assign(view.options, options)
    if (input.sms !== undefined) view.options.sms = { ...(view.options.sms as Json | undefined), ...input.sms }
    if (input.vehicle !== undefined) {
      view.vehicle = { vehicle_id: (view.vehicle?.vehicle_id as number | undefined) ?? this.nextVehicleId++, ...view.vehicle, ...input.vehicle }
    }
  }
}

function setStatus (stored: StoredSession, status: SessionStatus, nowMs: number): void {
  const { view } = stored
  view.status = status
  view.updated_at = sessionTime(nowMs)
  view.active = status === 'IDLE' || status === 'IN_PROGRESS' || status === 'STARTED' || status === 'PROCESS'
  if (status !== 'IDLE') view.inspect_started_at ??= sessionTime(nowMs)
  if (status === 'COMPLETE') {
    view.inspect_ended_at = sessionTime(nowMs)
    if (stored.photos.length === 0) {
      stored.photos.push(...SAMPLE_PHOTO_LABELS.map((label, i) => ({
        photo_code: i + 1,
        photo_label: label,
        url: `https://photos.pave-mock.invalid/${view.session_key}/${label.toLowerCase()}.jpg`,
        approved: true,
        approved_message: 'ACCEPTED',
        created_at: photoTime(nowMs),
        updated_at: photoTime(nowMs)
      })))
    }
  }
}

/** Every API key's state. */
export class MockStore {
  private readonly accounts = new Map<string, AccountState>()

  /** The state of one API key, created on first use. */
  forKey (apiKey: string): AccountState {
    let state = this.accounts.get(apiKey)
    if (state === undefined) {
      state = new AccountState(apiKey)
      this.accounts.set(apiKey, state)
    }
    return state
  }

  /** Moves a session (of any API key) to a status, as the user's phone would. */
  setSessionStatus (sessionKey: string, status: SessionStatus, nowMs: number): boolean {
    for (const state of this.accounts.values()) {
      if (state.setSessionStatus(sessionKey, status, nowMs)) return true
    }
    return false
  }

  clear (): void {
    this.accounts.clear()
  }
}
