import t from 'tap'
import { request } from 'undici'
import { ACCOUNT, FORBIDDEN_BODY, startUpstream, type Handler } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

const AHEAD_MS = 10 * 60 * 1000

/** An upstream whose clock runs 10 minutes ahead: it judges timestamps and writes `Date` by that clock. */
const skewedHandler: Handler = (_req, res, received) => {
  res.setHeader('date', new Date(Date.now() + AHEAD_MS).toUTCString())
  if (received.signedBy === undefined) {
    res.writeHead(403, { 'content-type': 'application/json' }).end(FORBIDDEN_BODY)
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: received.body.length }))
}

t.test('against an upstream 10 minutes ahead, calls succeed: the first 403 teaches the offset and is re-signed once', async (t) => {
  const upstream = await startUpstream({ now: () => Date.now() + AHEAD_MS, handler: skewedHandler })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const first = await request(`${proxy.url}/v1/callbacks`)
  t.equal(first.statusCode, 200, 'the caller never sees the 403')
  await first.body.dump()
  t.equal(upstream.received.length, 2, 'refused once, then re-signed')
  t.equal(upstream.received[0]?.signedBy, undefined)
  t.equal(upstream.received[1]?.signedBy, ACCOUNT.username)
  const offset = proxy.app.clockSkew?.offsetMs ?? 0
  t.ok(Math.abs(offset - AHEAD_MS) < 2_000, `learned offset ${offset} ms`)

  const body = JSON.stringify({ session: { theme: 'PRO' } })
  const post = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  t.equal(post.statusCode, 200)
  t.same(await post.body.json(), { bytes: body.length })
  t.equal(upstream.received.length, 3, 'signed right the first time now')

  const ready = await request(`${proxy.url}/readyz`)
  const details = await ready.body.json() as { clockOffsetMs: number, clockOffsetBeyondThreshold: boolean }
  t.ok(details.clockOffsetBeyondThreshold)
  t.ok(Math.abs(details.clockOffsetMs - AHEAD_MS) < 2_000)
  const metrics = await (await request(`${proxy.url}/metrics`)).body.text()
  t.match(metrics, /pave_proxy_clock_offset_seconds 59\d\.\d+|pave_proxy_clock_offset_seconds 60\d/)
  t.match(metrics, /pave_proxy_resigned_requests_total\{account="default"\} 1/)
  t.ok(proxy.logs.some((l) => l.includes('"level":40') && l.includes('the upstream clock is far from the local clock')), 'a warning was logged')
})

t.test('a small body is kept and replayed; a large one is not, and PAVE\'s 403 passes through', async (t) => {
  const upstream = await startUpstream({ now: () => Date.now() + AHEAD_MS, handler: skewedHandler })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const small = JSON.stringify({ vehicle: { vin: '1HGCM82633A004352' } })
  const first = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: small, headers: { 'content-type': 'application/json' } })
  t.equal(first.statusCode, 200)
  t.same(await first.body.json(), { bytes: small.length }, 'the replay carried the whole body')
  t.equal(upstream.received.length, 2)
  t.equal(upstream.received[1]?.body.toString(), small)
})

t.test('a body too large to keep is not replayed', async (t) => {
  const upstream = await startUpstream({ now: () => Date.now() + AHEAD_MS, handler: skewedHandler })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const large = 'x'.repeat(100_000)
  const refused = await request(`${proxy.url}/v1/hotspots/ABC/photos-url`, { method: 'POST', body: large, headers: { 'content-type': 'text/plain' } })
  t.equal(refused.statusCode, 403)
  t.equal(await refused.body.text(), FORBIDDEN_BODY, 'PAVE\'s own answer')
  t.equal(upstream.received.length, 1, 'not replayed')
  const next = await request(`${proxy.url}/v1/hotspots/ABC/photos-url`, { method: 'POST', body: large, headers: { 'content-type': 'text/plain' } })
  t.equal(next.statusCode, 200, 'the offset learned from the 403 signs the next call right')
  await next.body.dump()
})

t.test('a genuine 403 (wrong secret) is passed through, re-signed at most once', async (t) => {
  const upstream = await startUpstream({ now: () => Date.now() + AHEAD_MS, handler: skewedHandler })
  const proxy = await startProxy({ upstreamUrl: upstream.url, account: { ...ACCOUNT, secret: 'wrong-secret-not-real' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  for (let i = 0; i < 3; i++) {
    const res = await request(`${proxy.url}/v1/callbacks`)
    t.equal(res.statusCode, 403)
    t.equal(await res.body.text(), FORBIDDEN_BODY)
    t.notOk(res.headers['x-pave-proxy-error'])
  }
  t.equal(upstream.received.length, 4, 'one re-sign after the offset was learned, then none')
})

t.test('with correction off, the skewed upstream\'s 403 passes through', async (t) => {
  const upstream = await startUpstream({ now: () => Date.now() + AHEAD_MS, handler: skewedHandler })
  const proxy = await startProxy({ upstreamUrl: upstream.url, env: { PAVE_CLOCK_SKEW_CORRECTION: 'false' } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const res = await request(`${proxy.url}/v1/callbacks`)
  t.equal(res.statusCode, 403)
  await res.body.dump()
  t.equal(upstream.received.length, 1)
})
