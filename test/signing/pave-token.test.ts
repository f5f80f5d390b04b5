import t from 'tap'
import fc from 'fast-check'
import { createHmac } from 'node:crypto'
import { computeToken, formatTimestamp, parseTimestamp, tokenMessage } from '../../src/signing/pave-token.js'

t.test('the test vector from PAVE API.md', async (t) => {
  const credentials = { username: 'acme', apiKey: 'abcd1234', secret: 's3cr3t' }
  const timestamp = '2023-02-11T12:00:00Z'
  t.equal(tokenMessage(credentials, timestamp), 'acme:abcd1234@2023-02-11T12:00:00Z')
  t.equal(computeToken(credentials, timestamp), '3831a28fd9bb537826cee158a2fb45722de6992c95bfa83529e87e20b53a5fbb')
})

t.test('formatTimestamp truncates to whole seconds, UTC, literal Z', async (t) => {
  t.equal(formatTimestamp(new Date('2023-02-11T12:00:00.999Z')), '2023-02-11T12:00:00Z')
  t.equal(formatTimestamp(new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 1))), '2024-02-29T23:59:59Z')
  t.equal(formatTimestamp(new Date(0)), '1970-01-01T00:00:00Z')
  t.throws(() => formatTimestamp(new Date(Date.UTC(10000, 0, 1))), RangeError)
})

t.test('formatTimestamp always yields the documented shape and round-trips', async (t) => {
  fc.assert(fc.property(fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), (date) => {
    const ts = formatTimestamp(date)
    return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(ts) &&
      parseTimestamp(ts) === Math.floor(date.getTime() / 1000) * 1000
  }))
})

t.test('parseTimestamp refuses anything but the exact form', async (t) => {
  for (const bad of ['2023-02-11T12:00:00.000Z', '2023-02-11T12:00:00+00:00', '1676116800', '2023-02-11 12:00:00Z',
    '2023-02-30T12:00:00Z', '2023-13-01T00:00:00Z', '2023-02-11T24:00:00Z', '', ' 2023-02-11T12:00:00Z']) {
    t.equal(parseTimestamp(bad), undefined, bad)
  }
  t.equal(parseTimestamp('2023-02-11T12:00:00Z'), Date.UTC(2023, 1, 11, 12))
})

t.test('computeToken is HMAC-SHA256 keyed by the secret over the UTF-8 message', async (t) => {
  fc.assert(fc.property(fc.string(), fc.string(), fc.string({ minLength: 1 }), (username, apiKey, secret) => {
    const ts = '2030-01-01T00:00:00Z'
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(`${username}:${apiKey}@${ts}`, 'utf8')).digest('hex')
    return computeToken({ username, apiKey, secret }, ts) === expected
  }))
})
