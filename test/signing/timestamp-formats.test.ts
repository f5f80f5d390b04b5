/**
 * The `API-Timestamp` forms: each one written, parsed back exactly (and only when
 * asked for), signed over exactly the string sent, and chosen by
 * `signing.timestampFormat` / `PAVE_TIMESTAMP_FORMAT`.
 */
import t from 'tap'
import fc from 'fast-check'
import { request } from 'undici'
import {
  TIMESTAMP_FORMATS, computeToken, formatTimestamp, parseTimestamp, timestampFormatOf, tokenMessage, type TimestampFormat
} from '../../src/signing/pave-token.js'
import { Signer } from '../../src/signing/signer.js'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { TIMESTAMP_FORMAT_SETTINGS, type AccountConfig } from '../../src/config/schema.js'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

const AT = new Date('2023-02-11T12:00:00.250Z')
const WRITTEN: Record<TimestampFormat, string> = {
  'iso-seconds': '2023-02-11T12:00:00Z',
  'iso-millis': '2023-02-11T12:00:00.250Z',
  'unix-seconds': '1676116800',
  rfc1123: 'Sat, 11 Feb 2023 12:00:00 GMT'
}
const credentials = { username: 'acme', apiKey: 'abcd1234', secret: 's3cr3t' }

t.test('each form as written, and the token over exactly that string', async (t) => {
  t.same([...TIMESTAMP_FORMATS], Object.keys(WRITTEN))
  t.same([...TIMESTAMP_FORMAT_SETTINGS], [...TIMESTAMP_FORMATS], 'the settings table offers the same forms')
  for (const format of TIMESTAMP_FORMATS) {
    const written = formatTimestamp(AT, format)
    t.equal(written, WRITTEN[format], format)
    t.equal(tokenMessage(credentials, written), `acme:abcd1234@${WRITTEN[format]}`)
    t.equal(timestampFormatOf(written), format)
  }
  t.equal(formatTimestamp(AT), WRITTEN['iso-seconds'], 'iso-seconds is the default')
  // The API.md test vector stays pinned.
  t.equal(computeToken(credentials, formatTimestamp(new Date('2023-02-11T12:00:00Z'))), '3831a28fd9bb537826cee158a2fb45722de6992c95bfa83529e87e20b53a5fbb')
  t.equal(formatTimestamp(AT, 'iso-millis'), AT.toJSON())
  t.equal(formatTimestamp(AT, 'rfc1123'), AT.toUTCString())
  for (const format of TIMESTAMP_FORMATS) t.throws(() => formatTimestamp(new Date(Date.UTC(10000, 0, 1)), format), RangeError)
})

t.test('every form round-trips, and parses only when accepted', async (t) => {
  fc.assert(fc.property(fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), fc.constantFrom(...TIMESTAMP_FORMATS), (date, format) => {
    const written = formatTimestamp(date, format)
    const expected = format === 'iso-millis' ? date.getTime() : Math.floor(date.getTime() / 1000) * 1000
    return parseTimestamp(written, [format]) === expected && parseTimestamp(written, TIMESTAMP_FORMATS) === expected &&
      parseTimestamp(written, TIMESTAMP_FORMATS.filter((f) => f !== format)) === undefined
  }))
  t.equal(parseTimestamp(WRITTEN['unix-seconds']), undefined, 'only iso-seconds by default')
})

t.test('forms that name no date, or are near misses, are refused', async (t) => {
  const bad = [
    '2023-02-30T12:00:00.000Z', '2023-02-11T12:00:00.25Z', '2023-02-11T12:00:00.2500Z',
    '01676116800', '-1676116800', '1676116800.5', '999999999999', '1234567890123',
    'Thu, 30 Feb 2023 12:00:00 GMT', 'Fri, 11 Feb 2023 12:00:00 GMT', 'Sat, 11 Feb 2023 12:00:00 UTC', 'Sat, 1 Feb 2023 12:00:00 GMT', 'Saturday, 11 Feb 2023 12:00:00 GMT'
  ]
  for (const value of bad) {
    t.equal(parseTimestamp(value, TIMESTAMP_FORMATS), undefined, value)
    t.equal(timestampFormatOf(value), undefined, value)
  }
})

t.test('the signer writes its form, renews on time, and the token covers the string sent', async (t) => {
  const account: AccountConfig = { name: 'default', prefix: '/', username: 'acme', apiKey: 'abcd1234', apiSecret: 's3cr3t' }
  for (const format of TIMESTAMP_FORMATS) {
    let now = AT.getTime()
    const signer = new Signer({ tokenLifetimeSeconds: 300, refreshMarginSeconds: 60, now: () => now, timestampFormat: format })
    t.equal(signer.timestampFormat, format)
    const first = signer.sign(account)
    t.equal(first['api-timestamp'], WRITTEN[format], format)
    t.equal(first['api-token'], computeToken(credentials, WRITTEN[format]))
    now += 239_000
    t.equal(signer.sign(account), first, `${format}: reused within lifetime - margin`)
    now += 1_000
    t.not(signer.sign(account), first, `${format}: renewed after it`)
  }
  t.equal(new Signer({ tokenLifetimeSeconds: 300, refreshMarginSeconds: 60 }).timestampFormat, 'iso-seconds')
})

t.test('PAVE_TIMESTAMP_FORMAT and signing.timestampFormat', async (t) => {
  const env = { PAVE_USERNAME: 'acme', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's' }
  t.equal(loadConfig({ env }).signing.timestampFormat, 'iso-seconds')
  t.equal(loadConfig({ env: { ...env, PAVE_TIMESTAMP_FORMAT: 'rfc1123' } }).signing.timestampFormat, 'rfc1123')
  const file = 'signing:\n  timestampFormat: unix-seconds\n'
  t.equal(loadConfig({ env: { ...env, PAVE_PROXY_CONFIG: '/c.yaml' }, readFile: () => file }).signing.timestampFormat, 'unix-seconds')
  t.equal(loadConfig({ env: { ...env, PAVE_PROXY_CONFIG: '/c.yaml', PAVE_TIMESTAMP_FORMAT: 'iso-millis' }, readFile: () => file }).signing.timestampFormat, 'iso-millis', 'the environment wins')
  try {
    loadConfig({ env: { ...env, PAVE_TIMESTAMP_FORMAT: 'toJSON' } })
    t.fail('accepted an unknown form')
  } catch (error) {
    t.type(error, ConfigError)
    t.same((error as ConfigError).problems, ['PAVE_TIMESTAMP_FORMAT must be one of iso-seconds, iso-millis, unix-seconds, rfc1123'])
  }
})

for (const format of TIMESTAMP_FORMATS) {
  t.test(`through the proxy: PAVE_TIMESTAMP_FORMAT=${format} reaches an upstream accepting only that form`, async (t) => {
    const upstream = await startUpstream({ timestampFormats: [format] })
    const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_TIMESTAMP_FORMAT: format } })
    t.teardown(async () => { await proxy.close(); await upstream.close() })
    const res = await request(`${proxy.url}/v1/callbacks`)
    t.equal(res.statusCode, 200)
    await res.body.dump()
    const received = upstream.received[0]!
    t.equal(received.signedBy, ACCOUNT.username)
    t.equal(timestampFormatOf(received.headers['api-timestamp'] as string), format)
    t.equal(received.headers['api-token'], computeToken(ACCOUNT, received.headers['api-timestamp'] as string))
  })
}
