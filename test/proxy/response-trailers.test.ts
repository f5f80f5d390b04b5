/**
 * A chunked response's trailers reach the caller: they used to be dropped, since
 * undici hands them over only as the response completes.
 */
import { IncomingMessage, ServerResponse, request as httpRequest } from 'node:http'
import { Socket } from 'node:net'
import t from 'tap'
import { startRawUpstream } from '../hostile/lib/raw-upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest } from '../helpers/raw-http.js'
import { passTrailers } from '../../src/upstream/response-trailers.js'

const CHUNKED_WITH_TRAILERS = [
  'HTTP/1.1 200 OK', 'content-type: application/json', 'transfer-encoding: chunked', 'trailer: x-checksum, x-render-ms', '',
  '7', '{"a":1}', '0', 'X-Checksum: sha256=2f1d', 'x-render-ms: 12', 'keep-alive: timeout=99', '', ''
].join('\r\n')

t.test('trailers pass through to a raw HTTP/1.1 caller, after the body', async (t) => {
  const upstream = await startRawUpstream((socket) => { socket.write(CHUNKED_WITH_TRAILERS) })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const answer = await rawRequest(proxy.port, 'GET /v1/sessions/ABC/results HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n', 5_000, true)
  t.equal(answer.status, 200)
  const [head, body] = answer.text.split('\r\n\r\n', 2) as [string, string]
  t.match(head, /\r\ntransfer-encoding: chunked/i)
  const tail = answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4)
  t.match(tail, /^7\r\n\{"a":1\}\r\n0\r\n/, `body first: ${JSON.stringify(body)}`)
  t.match(tail, /\r\n0\r\n(.*\r\n)*X-Checksum: sha256=2f1d\r\n/, 'X-Checksum in the trailer section')
  t.match(tail, /\r\n0\r\n(.*\r\n)*x-render-ms: 12\r\n/)
  t.notMatch(tail, /keep-alive/i, 'hop-by-hop trailer fields are not passed on')
  t.match(tail, /\r\n\r\n$/, 'the message ends after the trailers')
})

t.test('node:http sees the trailers', async (t) => {
  const upstream = await startRawUpstream((socket) => { socket.write(CHUNKED_WITH_TRAILERS) })
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const trailers = await new Promise<NodeJS.Dict<string>>((resolve, reject) => {
    httpRequest(`${proxy.url}/v1/sessions/ABC/results`, (res) => {
      res.resume()
      res.on('end', () => resolve(res.trailers))
    }).on('error', reject).end()
  })
  t.same(trailers, { 'x-checksum': 'sha256=2f1d', 'x-render-ms': '12' })
})

t.test('a chunked response without trailers (or with hop-by-hop ones only) ends as before', async (t) => {
  for (const trailers of ['', 'Keep-Alive: timeout=5\r\n']) {
    const upstream = await startRawUpstream((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n${trailers}\r\n`)
    })
    const proxy = await startProxy({ upstreamUrl: upstream.url })
    const answer = await rawRequest(proxy.port, 'GET /v1/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5_000, true)
    await proxy.close()
    await upstream.close()
    t.equal(answer.status, 200)
    t.match(answer.text, /\r\n\r\n2\r\nok\r\n0\r\n\r\n$/, JSON.stringify(trailers))
  }
})

t.test('passTrailers leaves alone what is not a written caller response', async (t) => {
  const raw = [Buffer.from('x-a'), Buffer.from('1')]
  t.doesNotThrow(() => passTrailers({ addTrailers: () => { throw new Error('called') } }, raw), 'not a ServerResponse')
  const res = new ServerResponse(new IncomingMessage(new Socket()))
  passTrailers(res, raw) // head not written: the discarded 403 of a re-sign
  res.writeHead(200)
  t.notMatch(res.getHeaders(), { trailer: String }, 'no Trailer header is invented')
  t.doesNotThrow(() => passTrailers(res, raw))
})
