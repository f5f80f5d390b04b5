/** What the fast upstream answers and what the load generators ask for. */

/** The path every load run requests (a session look-up, as an app would make). */
export const BENCH_PATH = '/v1/sessions/UCB-C3NPR4AGQZ'

/** A fixed, session-shaped JSON body of about 600 bytes. */
export const SESSION_BODY = JSON.stringify({
  session_key: 'UCB-C3NPR4AGQZ',
  status: 'IDLE',
  active: true,
  theme: 'PRO',
  language: 'en',
  redirect_url: 'https://example.invalid/inspection/done',
  client_id: 'bench-client-0001',
  vehicle: { vin: '1HGBH41JXMN109186', year: 2021, make: 'Honda', model: 'Civic', trim: 'EX', body_type: 'SEDAN', ext_col: 'BLUE', int_col: 'BLACK', odom_reading: 41233, odom_unit: 'KILOMETRES' },
  inspection: { capture_url: 'https://example.invalid/capture/UCB-C3NPR4AGQZ', landing_page: 'https://example.invalid/UCB-C3NPR4AGQZ' },
  created_at: '2023-02-11T12:00:00Z',
  updated_at: '2023-02-11T12:00:05Z'
})

/** PAVE's answer to a bad signature (API.md). */
export const FORBIDDEN_BODY = JSON.stringify({ message: 'Unable to validate the request, please recheck your API-Key and API-Token.' })

/** Local-only paths of the bench upstream. */
export const VERIFY_PATH = '/bench/verify'
export const SINK_PATH = '/bench/sink'
export const SOURCE_PATH = '/bench/source'
export const STATS_PATH = '/bench/stats'
