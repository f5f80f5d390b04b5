import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

t.test('path and query arrive byte for byte', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const targets = [
    '/v1/sessions/UCB-C3NPR4AGQZ',
    '/v1/callbacks/SESSION:STATUS_CHANGE',
    '/v1/callbacks/SESSION%3ASTATUS_CHANGE',
    '/v1/sessions?a=1&a=2&a=&b',
    '/v1/sessions?q=%20%2B+plus&x=%E2%9C%93&empty=&y=a%26b%3Dc',
    '/v1/sessions/',
    '/v1/x%20y/z%7C?sort=-created_at&filter[status]=done'
  ]
  for (const target of targets) {
    const res = await request(proxy.url + target)
    t.equal(res.statusCode, 200, target)
    await res.body.dump()
  }
  t.same(upstream.received.map((r) => r.url), targets)
  // A bare '?' (empty query) is the one normalisation: it arrives without the '?'.
  const bare = await request(`${proxy.url}/v1/sessions?`)
  await bare.body.dump()
  t.equal(upstream.received.at(-1)?.url, '/v1/sessions')
})

t.test('large bodies stream both ways without change', async (t) => {
  const size = 24 * 1024 * 1024
  const download = randomBytes(size)
  const upstream = await startUpstream({
    handler: (_req, res, received) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upload-sha256': createHash('sha256').update(received.body).digest('hex') })
      // chunked: no content-length
      let offset = 0
      const next = (): void => {
        while (offset < download.length) {
          const chunk = download.subarray(offset, offset + 65536)
          offset += chunk.length
          if (!res.write(chunk)) { res.once('drain', next); return }
        }
        res.end()
      }
      next()
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const upload = randomBytes(size)
  async function * chunks (): AsyncGenerator<Buffer> {
    for (let i = 0; i < upload.length; i += 100_000) yield upload.subarray(i, i + 100_000)
  }
  const res = await request(`${proxy.url}/v1/hotspots/ABC/photos-url`, { method: 'POST', body: Readable.from(chunks()), headers: { 'content-type': 'application/octet-stream' } })
  t.equal(res.statusCode, 200)
  t.equal(upstream.received[0]!.headers['transfer-encoding'], 'chunked', 'upload streamed chunked')
  t.equal(res.headers['x-upload-sha256'], createHash('sha256').update(upload).digest('hex'), 'upload arrived intact')
  const hash = createHash('sha256')
  for await (const chunk of res.body) hash.update(chunk as Buffer)
  t.equal(hash.digest('hex'), createHash('sha256').update(download).digest('hex'), 'download arrived intact')
})

t.test('the first byte reaches the caller before the upstream finishes', async (t) => {
  let finish: () => void = () => {}
  const upstream = await startUpstream({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first part\n')
      finish = () => res.end('last part\n')
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/sessions/ABC/results`)
  const iterator = res.body[Symbol.asyncIterator]()
  const first = await iterator.next()
  t.equal(Buffer.from(first.value as Buffer).toString(), 'first part\n', 'first chunk arrived while the upstream is still writing')
  finish()
  let rest = ''
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) rest += Buffer.from(next.value as Buffer).toString()
  t.equal(rest, 'last part\n')
})

t.test('PAVE\'s own errors pass through untouched', async (t) => {
  const answers: Array<[number, string, Record<string, string>]> = [
    [403, '{"message": "Unable to validate the request, please recheck your API-Key and API-Token."}', { 'content-type': 'application/json' }],
    [404, '{"message":"Session not found"}', { 'content-type': 'application/json', 'x-pave-trace': 'abc' }],
    [500, 'upstream exploded', { 'content-type': 'text/plain' }],
    [503, '{"message":"maintenance"}', { 'content-type': 'application/json', 'retry-after': '120' }]
  ]
  let index = 0
  const upstream = await startUpstream({
    handler: (_req, res) => {
      const [status, body, headers] = answers[index++]!
      res.writeHead(status, headers).end(body)
    }
  })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (const [status, body, headers] of answers) {
    const res = await request(`${proxy.url}/v1/sessions/NOPE`)
    t.equal(res.statusCode, status)
    t.equal(await res.body.text(), body)
    for (const [name, value] of Object.entries(headers)) t.equal(res.headers[name], value, name)
    t.notOk(res.headers['x-pave-proxy-error'], 'not marked as the proxy\'s error')
  }
  t.equal(upstream.received.length, 4, 'a GET answered 503 is not retried')
})

t.test('an unknown request id is generated; a plain caller id is kept', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const kept = await request(`${proxy.url}/v1/x`, { headers: { 'x-request-id': 'app-trace-123' } })
  await kept.body.dump()
  t.equal(kept.headers['x-request-id'], 'app-trace-123')
  t.equal(upstream.received[0]!.headers['x-request-id'], 'app-trace-123')
  const replaced = await request(`${proxy.url}/v1/x`, { headers: { 'x-request-id': 'bad id\twith spaces' } })
  await replaced.body.dump()
  t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  t.equal(upstream.received[1]!.headers['x-request-id'], replaced.headers['x-request-id'])
  t.ok(proxy.logs.some((line) => line.includes('"reqId":"app-trace-123"') && line.includes('request completed')), 'access line carries the id')
})
