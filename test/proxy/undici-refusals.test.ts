/**
 * A request undici refuses before contacting anything (its argument and support
 * checks) is the proxy's own fault: 500 PAVE_PROXY_INTERNAL, and an error line naming
 * undici's code and message, never a header value. Every `upstream request failed`
 * line names the underlying error's code.
 */
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { Agent, request, type Dispatcher } from 'undici'
import { startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'
import { classifyUpstreamError, underlyingError } from '../../src/errors.js'

/** A real pool that adds a header to every request, as a bug in the forwarder would. */
function poolAdding (name: string, value: string): Dispatcher {
  return new Agent().compose((dispatch) => (options, handler) =>
    dispatch({ ...options, headers: { ...(options.headers as Record<string, string>), [name]: value } }, handler))
}

const cases: Array<[string, string, string, RegExp]> = [
  ['expect', 'secret-looking-value-1', 'UND_ERR_NOT_SUPPORTED', /expect header not supported/],
  ['upgrade', 'secret-looking-value-2', 'UND_ERR_INVALID_ARG', /invalid upgrade header/]
]

for (const [name, value, undiciCode, message] of cases) {
  t.test(`undici refusing a "${name}" header: 500 PAVE_PROXY_INTERNAL, PAVE never contacted`, async (t) => {
    const upstream = await startUpstream()
    const dispatcher = poolAdding(name, value)
    const proxy = await startProxy({ upstreamUrl: upstream.url, dispatcher })
    t.teardown(async () => { await proxy.close(); await dispatcher.close(); await upstream.close() })

    const res = await request(`${proxy.url}/v1/sessions`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
    t.equal(res.statusCode, 500)
    t.equal(res.headers['x-pave-proxy-error'], 'PAVE_PROXY_INTERNAL')
    t.same(await res.body.json(), { message: 'The proxy failed to handle the request.', code: 'PAVE_PROXY_INTERNAL' })
    t.equal(upstream.received.length, 0, 'nothing reached the upstream')

    const lines = proxy.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'upstream request failed')
    t.equal(lines.length, 1)
    const line = lines[0]!
    t.equal(line.level, 50, 'an error, not a warning')
    t.equal(line.code, 'PAVE_PROXY_INTERNAL')
    t.equal(line.cause, undiciCode)
    t.match(line.reason, message)
    t.notOk(proxy.logs.some((l) => l.includes(value)), 'the header value is never logged')
  })
}

t.test('a refused connection: the warning names ECONNREFUSED', async (t) => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  const proxy = await startProxy({ upstreamUrl: `http://127.0.0.1:${port}`, env: { PAVE_UPSTREAM_RETRIES: '0' } })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}/v1/sessions`)
  t.equal(res.statusCode, 502)
  await res.body.dump()
  const line = proxy.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'upstream request failed')
  t.equal(line?.level, 40)
  t.equal(line?.code, 'PAVE_PROXY_UPSTREAM_UNREACHABLE')
  t.equal(line?.cause, 'ECONNREFUSED')
  t.notOk('reason' in (line ?? {}), 'no message for a network failure (it could name internal addresses)')
})

t.test('classification and the underlying code', async (t) => {
  for (const code of ['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_INVALID_RETURN_VALUE', 'UND_ERR_BPL_MISSING_UPSTREAM', 'UND_ERR_MAX_ORIGINS_REACHED']) {
    t.equal(classifyUpstreamError(Object.assign(new Error('x'), { code })), 'PAVE_PROXY_INTERNAL', code)
  }
  const wrapped = new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'ECONNRESET' }) })
  t.same(underlyingError(wrapped), { code: 'ECONNRESET', message: 'inner' })
  const parser = Object.assign(new Error('Response does not match the HTTP/1.1 protocol'), { name: 'HTTPParserError' })
  t.same(underlyingError(parser), { code: 'HTTPParserError', message: 'Response does not match the HTTP/1.1 protocol' })
  t.same(underlyingError('a string'), { code: 'string', message: 'a string' })
})
