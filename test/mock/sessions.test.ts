/** Sessions and hotspots in pave-mock behave as PAVE's docs describe them. */
import t from 'tap'
import { startPaveMock } from '../../src/mock/server.js'
import { SESSION_KEY_PATTERN, photoTime, sessionTime } from '../../src/mock/store.js'
import { sessionInput } from '../../src/mock/routes.js'
import { ALICE, BOB, call } from './client.js'

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

t.test('create, read, update, delete a session', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE, BOB] })
  t.teardown(mock.close)

  const created = await call(mock, 'POST', '/v1/sessions', {
    body: {
      session: { theme: 'LITE', redirect_url: 'https://example.com/done', language: 'fr', client_id: 'SOUTH234889' },
      vehicle: { vin: 'JN1CV6AR9BMXXXXXX', year: '2011', make: 'Infiniti' },
      sms: { to: '647-455-0000', to_name: 'Jane Demo' }
    }
  })
  t.equal(created.status, 200)
  const key = created.json.session_key as string
  t.match(key, SESSION_KEY_PATTERN)
  t.match(created.json, {
    theme: 'LITE',
    active: true,
    status: 'IDLE',
    redirect_url: 'https://example.com/done',
    inspect_started_at: null,
    inspect_ended_at: null,
    created_at: TIME,
    updated_at: TIME,
    language: 'FR',
    options: { client_id: 'SOUTH234889', sms: { to: '647-455-0000', to_name: 'Jane Demo' } },
    vehicle: { vehicle_id: Number, vin: 'JN1CV6AR9BMXXXXXX', year: '2011', make: 'Infiniti' }
  })

  const read = await call(mock, 'GET', `/v1/sessions/${key}`)
  t.equal(read.status, 200)
  t.same(read.json, created.json, 'read back as created')
  t.equal((await call(mock, 'GET', `/v1/sessions/${key}`, { as: BOB })).status, 404, 'another API key does not see it')

  const updated = await call(mock, 'PUT', `/v1/sessions/${key}`, { body: { vehicle: { model: 'G37' }, sms: { from: '647-422-0000' } } })
  t.equal(updated.status, 200)
  t.match(updated.json.vehicle, { vehicle_id: created.json.vehicle.vehicle_id, vin: 'JN1CV6AR9BMXXXXXX', model: 'G37' })
  t.same(updated.json.options.sms, { to: '647-455-0000', to_name: 'Jane Demo', from: '647-422-0000' })
  t.equal(updated.json.theme, 'LITE', 'what is not sent is kept')

  const deleted = await call(mock, 'DELETE', `/v1/sessions/${key}`)
  t.equal(deleted.status, 200)
  t.same(deleted.json, { message: `Session ${key} has been successfully removed.` })
  const gone = await call(mock, 'GET', `/v1/sessions/${key}`)
  t.equal(gone.status, 404)
  t.same(gone.json, { message: `Session ${key} cannot be found.` })
})

t.test('a session with no body gets the defaults; each create makes a new key', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  const a = await call(mock, 'POST', '/v1/sessions')
  const b = await call(mock, 'POST', '/v1/sessions', { body: '' })
  t.equal(a.status, 200)
  t.equal(b.status, 200)
  t.match(a.json, { theme: 'PRO', language: 'EN', status: 'IDLE', redirect_url: null, options: {}, vehicle: null })
  t.not(a.json.session_key, b.json.session_key)
  const withVehicle = await call(mock, 'PUT', `/v1/sessions/${a.json.session_key as string}`, { body: { vehicle: { vin: 'X' } } })
  t.match(withVehicle.json.vehicle, { vehicle_id: Number, vin: 'X' }, 'a vehicle added later gets an id')
  t.equal((await call(mock, 'PUT', `/v1/sessions/${a.json.session_key as string}`, { body: {} })).status, 200, 'an empty update is fine')
})

t.test('unknown sessions are 404 JSON on every session endpoint', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  const key = 'ABC-1Q2W3E4R5T'
  for (const [method, path] of [
    ['GET', `/v1/sessions/${key}`], ['PUT', `/v1/sessions/${key}`], ['DELETE', `/v1/sessions/${key}`],
    ['GET', `/v1/sessions/${key}/photos`], ['GET', `/v1/sessions/${key}/notes`], ['GET', `/v1/sessions/${key}/results`],
    ['POST', `/v1/hotspots/${key}/photos-url`]
  ] as const) {
    const res = await call(mock, method, path, method === 'PUT' || method === 'POST' ? { body: {} } : {})
    t.equal(res.status, 404, `${method} ${path}`)
    t.same(res.json, { message: `Session ${key} cannot be found.` })
  }
})

t.test('bad bodies are 400 JSON', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  const invalid = await call(mock, 'POST', '/v1/sessions', { body: '{"session": ' })
  t.equal(invalid.status, 400)
  t.same(invalid.json, { message: 'Invalid JSON body.' })
  t.equal(mock.requests.at(-1)?.username, 'demo-user', 'signed fine, refused for its body')

  const cases: Array<[unknown, string]> = [
    [[1, 2], 'The request body must be a JSON object.'],
    ['"text"', 'The request body must be a JSON object.'],
    [{ session: 'LITE' }, 'The session field must be an object.'],
    [{ vehicle: ['vin'] }, 'The vehicle field must be an object.'],
    [{ session: { theme: 'GOLD' } }, 'The selected session.theme is invalid (expected LITE, PRO, CAPT).'],
    [{ sms: { from: '647-422-0000' } }, 'Missing required fields.']
  ]
  for (const [body, message] of cases) {
    const res = await call(mock, 'POST', '/v1/sessions', { body })
    t.equal(res.status, 400, JSON.stringify(body))
    t.same(res.json, { message })
  }
  const key = (await call(mock, 'POST', '/v1/sessions')).json.session_key as string
  const put = await call(mock, 'PUT', `/v1/sessions/${key}`, { body: { sms: {} } })
  t.equal(put.status, 400)
  t.same(put.json, { message: 'Missing required fields.' })
  t.same(sessionInput(null), {}, 'a JSON null body is no body')
})

t.test('a started session cannot be updated or deleted; photos, notes and results follow its status', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  const key = (await call(mock, 'POST', '/v1/sessions', { body: { vehicle: { vin: 'JN1CV6AR9BMXXXXXX' } } })).json.session_key as string

  t.same((await call(mock, 'GET', `/v1/sessions/${key}/photos`)).json, [], 'no photos yet')
  t.same((await call(mock, 'GET', `/v1/sessions/${key}/notes`)).json, [])
  const pending = await call(mock, 'GET', `/v1/sessions/${key}/results`)
  t.equal(pending.status, 200)
  t.same(pending.json, { session_key: key, status: 'IDLE', message: `Session ${key} has not been completed yet.` })

  t.equal(mock.setSessionStatus(key, 'IN_PROGRESS'), true)
  t.equal(mock.setSessionStatus('ZZZ-0000000000', 'IN_PROGRESS'), false, 'unknown session')
  const started = await call(mock, 'GET', `/v1/sessions/${key}`)
  t.match(started.json, { status: 'IN_PROGRESS', active: true, inspect_started_at: TIME, inspect_ended_at: null })
  const put = await call(mock, 'PUT', `/v1/sessions/${key}`, { body: { vehicle: { model: 'X' } } })
  t.equal(put.status, 400)
  t.same(put.json, { message: `Session ${key} has been started and cannot be updated.` })
  const del = await call(mock, 'DELETE', `/v1/sessions/${key}`)
  t.equal(del.status, 400)
  t.same(del.json, { message: `Session ${key} has been started and cannot be deleted.` })

  mock.setSessionStatus(key, 'COMPLETE')
  const done = await call(mock, 'GET', `/v1/sessions/${key}`)
  t.match(done.json, { status: 'COMPLETE', active: false, inspect_started_at: started.json.inspect_started_at, inspect_ended_at: TIME })
  const photos = await call(mock, 'GET', `/v1/sessions/${key}/photos`)
  t.ok(photos.json.length > 0)
  t.match(photos.json[0], { photo_code: 1, photo_label: 'VIN', url: /^https:\/\//, approved: true, approved_message: 'ACCEPTED', created_at: /\+00:00$/, updated_at: /\+00:00$/ })
  const results = await call(mock, 'GET', `/v1/sessions/${key}/results`)
  t.match(results.json, {
    event: 'SESSION:COMPLETE',
    session: { session_key: key, status: 'COMPLETE' },
    vehicle: { vin: 'JN1CV6AR9BMXXXXXX' },
    photos: photos.json,
    inspection: { damage_count: 0 },
    condition_report: { url: /\.pdf$/ }
  })
  t.notOk('vehicle' in results.json.session, 'the vehicle is reported beside the session')
})

t.test('hotspots: photo URLs are added to a session, which starts it', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  const key = (await call(mock, 'POST', '/v1/sessions')).json.session_key as string
  const path = `/v1/hotspots/${key}/photos-url`
  for (const body of [{}, { photos: [] }, { photos: 'x' }, { photos: [{ photo_label: 'Front' }] }, { photos: [{ url: 'https://x', photo_label: '' }] }, [1]]) {
    const res = await call(mock, 'POST', path, { body })
    t.equal(res.status, 400, JSON.stringify(body))
    t.same(res.json, { message: 'Missing required fields.' })
  }
  const first = await call(mock, 'POST', path, { body: { photos: [{ photo_label: 'Front', url: 'https://example.com/front.jpg' }, { photo_label: 'Rear', url: 'https://example.com/rear.jpg' }] } })
  t.equal(first.status, 200)
  t.match(first.json, { session_key: key, photos: [{ photo_code: 1, photo_label: 'Front', url: 'https://example.com/front.jpg', approved: true }, { photo_code: 2, photo_label: 'Rear' }] })
  const second = await call(mock, 'POST', path, { body: { photos: [{ photo_label: 'Left', url: 'https://example.com/left.jpg' }] } })
  t.match(second.json.photos, [{ photo_code: 3, photo_label: 'Left' }])
  t.equal((await call(mock, 'GET', `/v1/sessions/${key}`)).json.status, 'IN_PROGRESS')
  t.equal((await call(mock, 'GET', `/v1/sessions/${key}/photos`)).json.length, 3)
  mock.setSessionStatus(key, 'COMPLETE')
  t.equal((await call(mock, 'GET', `/v1/sessions/${key}/photos`)).json.length, 3, 'uploaded photos are kept on completion')
})

t.test('reset() forgets the sessions', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  const key = (await call(mock, 'POST', '/v1/sessions')).json.session_key as string
  mock.reset()
  t.equal((await call(mock, 'GET', `/v1/sessions/${key}`)).status, 404)
})

t.test('PAVE\'s time formats', async (t) => {
  const at = Date.parse('2021-05-25T11:50:49.123Z')
  t.equal(sessionTime(at), '2021-05-25T11:50:49.123000Z')
  t.equal(photoTime(at), '2021-05-25T11:50:49+00:00')
})
