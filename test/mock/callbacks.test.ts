/** Callbacks (webhook settings) in pave-mock: one per event per API key, as PAVE documents them. */
import t from 'tap'
import { startPaveMock } from '../../src/mock/server.js'
import { ALICE, BOB, call } from './client.js'

const EVENTS = ['SESSION:SMS_PROCESS', 'SESSION:STAGE_CHANGE', 'SESSION:STATUS_CHANGE', 'SESSION:COMPLETE']

t.test('create, list, read, update, delete a callback', async (t) => {
  const mock = await startPaveMock({ accounts: [ALICE, BOB] })
  t.teardown(mock.close)

  t.same((await call(mock, 'GET', '/v1/callbacks')).json, { api_key: ALICE.apiKey, data: [] })

  const created = await call(mock, 'POST', '/v1/callbacks', {
    body: { event: 'SESSION:STAGE_CHANGE', url: 'https://example.com/hook', headers: { Authorization: 'Bearer demo' }, payload: { source: 'PAVE' } }
  })
  t.equal(created.status, 200)
  const setting = { event: 'SESSION:STAGE_CHANGE', url: 'https://example.com/hook', method: 'POST', headers: { Authorization: 'Bearer demo' }, payload: { source: 'PAVE' } }
  t.same(created.json, { api_key: ALICE.apiKey, ...setting })

  t.same((await call(mock, 'GET', '/v1/callbacks')).json, { api_key: ALICE.apiKey, data: [setting] })
  t.same((await call(mock, 'GET', '/v1/callbacks', { as: BOB })).json, { api_key: BOB.apiKey, data: [] }, 'per API key')
  const one = await call(mock, 'GET', '/v1/callbacks/SESSION:STAGE_CHANGE')
  t.same(one.json, { api_key: ALICE.apiKey, data: setting })
  t.same((await call(mock, 'GET', '/v1/callbacks/SESSION%3ASTAGE_CHANGE')).json, one.json, 'the event may be percent-encoded')

  const updated = await call(mock, 'PUT', '/v1/callbacks/SESSION:STAGE_CHANGE', { body: { url: 'https://example.com/hook2', method: 'put' } })
  t.equal(updated.status, 200)
  t.same(updated.json, { api_key: ALICE.apiKey, ...setting, url: 'https://example.com/hook2', method: 'PUT' })

  const deleted = await call(mock, 'DELETE', '/v1/callbacks/SESSION:STAGE_CHANGE')
  t.equal(deleted.status, 200)
  t.same(deleted.json, { api_key: ALICE.apiKey, message: 'Callback setting for the event SESSION:STAGE_CHANGE has been successfully removed.' })
  t.same((await call(mock, 'GET', '/v1/callbacks')).json.data, [])
})

t.test('the four documented events, each once', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  for (const event of EVENTS) {
    const res = await call(mock, 'POST', '/v1/callbacks', { body: { event, url: `https://example.com/${event}` } })
    t.equal(res.status, 200, event)
    t.match(res.json, { event, method: 'POST', headers: {}, payload: {} }, 'defaults')
  }
  t.same((await call(mock, 'GET', '/v1/callbacks')).json.data.map((s: { event: string }) => s.event), EVENTS)
  const again = await call(mock, 'POST', '/v1/callbacks', { body: { event: 'SESSION:COMPLETE', url: 'https://example.com/x' } })
  t.equal(again.status, 400)
  t.same(again.json, { message: 'Your API Key already has a callback setting for the event SESSION:COMPLETE.' })
  mock.reset()
  t.same((await call(mock, 'GET', '/v1/callbacks')).json.data, [], 'reset() forgets them')
})

t.test('400 "Missing required fields." and the documented 404', async (t) => {
  const mock = await startPaveMock()
  t.teardown(mock.close)
  for (const body of [undefined, {}, { event: 'SESSION:COMPLETE' }, { url: 'https://example.com' }, { event: 'SESSION:COMPLETE', url: '' }, ['x']]) {
    const res = await call(mock, 'POST', '/v1/callbacks', body === undefined ? {} : { body })
    t.equal(res.status, 400, JSON.stringify(body))
    t.same(res.json, { message: 'Missing required fields.' })
  }
  const unknownEvent = await call(mock, 'POST', '/v1/callbacks', { body: { event: 'SESSION:EXPLODE', url: 'https://example.com' } })
  t.equal(unknownEvent.status, 400)
  t.same(unknownEvent.json, { message: 'The selected event is invalid.' })

  for (const [method, body] of [['GET', undefined], ['PUT', { url: 'https://example.com' }], ['DELETE', undefined]] as const) {
    const res = await call(mock, method, '/v1/callbacks/SESSION:COMPLETE', body === undefined ? {} : { body })
    t.equal(res.status, 404, method)
    t.same(res.json, { api_key: 'demo-key-not-real', message: 'Your API Key does not have callback setting for the event SESSION:COMPLETE.' })
  }

  await call(mock, 'POST', '/v1/callbacks', { body: { event: 'SESSION:COMPLETE', url: 'https://example.com' } })
  for (const body of [{}, { method: 'GET' }, 'null']) {
    const res = await call(mock, 'PUT', '/v1/callbacks/SESSION:COMPLETE', { body })
    t.equal(res.status, 400, JSON.stringify(body))
    t.same(res.json, { message: 'Missing required fields.' })
  }
})
