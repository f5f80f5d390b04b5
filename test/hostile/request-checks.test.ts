/**
 * The request checks on their own (no sockets): which targets are acceptable,
 * which messages are refused, and what the client-error handler does with a
 * connection in each state.
 */
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { isAcceptableTarget, messageProblem, MAX_REQUEST_HEADERS } from '../../src/inbound/request-target.js'
import { clientErrorCode, connectionsCheckingInterval, createClientErrorHandler, rawErrorResponse } from '../../src/inbound/client-errors.js'

t.test('targets', async (t) => {
  for (const target of ['/', '/v1/sessions', '/v1/sessions/UCB-C3NPR4AGQZ/photos?limit=5', '/v1/callbacks/SESSION%3ACOMPLETE', '/test/v1/a.b/x_y~z',
    '/v1/%C3%A9', '/v1/x?next=/../..&q=%2e%2e%2f', '/v1/...', '/v1/x/']) {
    t.ok(isAcceptableTarget(target), `accepted: ${target}`)
  }
  for (const target of ['', '*', 'v1', '//v1', 'http://a/v1', '/v1/../x', '/v1/./x', '/v1/%2e%2e/x', '/v1/.%2E/x', '/v1//x', '/v1\\x',
    '/v1;x', '/v1/x#y', '/v1/%2fx', '/v1/%5Cx', '/v1/%3bx', '/v1/%00', '/%74est', '/v1/%7e', '/v1/%41', '/v1/%zz', '/v1/%', '/v1/%c0%ae',
    '/v1/%e0%80%ae', '/v1/é', '/v1/a b', '/v1/\t']) {
    t.notOk(isAcceptableTarget(target), `refused: ${JSON.stringify(target)}`)
  }
})

function message (version: string, headers: string[]): IncomingMessage {
  const [major, minor] = version.split('.').map(Number) as [number, number]
  const parsed: Record<string, string> = {}
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase()
    if (parsed[name] === undefined) parsed[name] = headers[i + 1] as string
  }
  return { httpVersionMajor: major, httpVersionMinor: minor, rawHeaders: headers, headers: parsed } as unknown as IncomingMessage
}

t.test('messages', async (t) => {
  t.equal(messageProblem(message('1.1', ['Host', 'pave-proxy:8080'])), undefined)
  t.equal(messageProblem(message('1.1', ['Host', '[::1]:8080', 'Transfer-Encoding', ' Chunked '])), undefined)
  t.equal(messageProblem(message('1.0', [])), undefined, 'HTTP/1.0 needs no Host')
  t.equal(messageProblem(message('1.1', ['Host', ''])), undefined, 'an empty Host is allowed (RFC 9112 §3.2)')
  const bad: Array<[string, string[]]> = [
    ['0.9', []], ['2.0', ['Host', 'x']], ['1.2', ['Host', 'x']],
    ['1.1', []], ['1.1', ['Host', 'a', 'host', 'b']], ['1.1', ['Host', 'a/b']], ['1.1', ['Host', 'u@a']], ['1.1', ['Host', 'a:b']],
    ['1.1', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked']], ['1.0', ['Transfer-Encoding', 'chunked']]
  ]
  for (const [version, headers] of bad) t.equal(messageProblem(message(version, headers)), 'PAVE_PROXY_REQUEST_BAD', `${version} ${headers.join(': ')}`)
  const many = Array.from({ length: MAX_REQUEST_HEADERS + 1 }, (_, i) => [`x-${i}`, 'v']).flat()
  t.equal(messageProblem(message('1.1', many)), 'PAVE_PROXY_REQUEST_HEADERS_TOO_LARGE')
})

function fakeSocket (state: { writable: boolean, headersSent?: boolean }): Socket & { wrote: string[], destroyed: boolean } {
  const socket = {
    writable: state.writable,
    wrote: [] as string[],
    destroyed: false,
    _httpMessage: state.headersSent === undefined ? null : { headersSent: state.headersSent },
    end (text: string) { socket.wrote.push(text) },
    destroy () { socket.destroyed = true }
  }
  return socket as unknown as Socket & { wrote: string[], destroyed: boolean }
}

t.test('the client-error handler', async (t) => {
  const lines: Array<[string, object, string]> = []
  const logger = {
    info: (o: object, m: string) => lines.push(['info', o, m]),
    debug: (o: object, m: string) => lines.push(['debug', o, m])
  } as unknown as FastifyBaseLogger
  const handle = createClientErrorHandler(logger)
  const error = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code })

  const idle = fakeSocket({ writable: true })
  handle(error('HPE_INVALID_METHOD'), idle)
  t.match(idle.wrote[0], /^HTTP\/1\.1 400 Bad Request\r\nconnection: close\r\n[^]*x-pave-proxy-error: PAVE_PROXY_REQUEST_BAD\r\n/)

  const waiting = fakeSocket({ writable: true, headersSent: false })
  handle(error('HPE_HEADER_OVERFLOW'), waiting)
  t.match(waiting.wrote[0], /^HTTP\/1\.1 431 Request Header Fields Too Large/, 'a request whose answer has not started gets the error')

  const answering = fakeSocket({ writable: true, headersSent: true })
  handle(error('HPE_INVALID_CHUNK_SIZE'), answering)
  t.same(answering.wrote, [], 'nothing written into a response already started')
  t.ok(answering.destroyed, 'the connection is cut instead')

  const closing = fakeSocket({ writable: false })
  handle(error('ERR_HTTP_REQUEST_TIMEOUT'), closing)
  t.ok(closing.destroyed)

  const lost = fakeSocket({ writable: true })
  handle(error('HPE_INVALID_EOF_STATE'), lost)
  t.same(lost.wrote, [])
  t.ok(lost.destroyed)
  const codeless = fakeSocket({ writable: true })
  handle(new Error('no code at all'), codeless)
  t.match(codeless.wrote[0], /^HTTP\/1\.1 400 Bad Request\r\n/, 'an error without a code is a bad request, not a lost connection')
  t.same(lines.map(([level, , msg]) => `${level} ${msg}`), [
    'info refused a malformed request', 'info refused a malformed request', 'info refused a malformed request',
    'info refused a malformed request', 'debug a caller\'s connection was lost', 'info refused a malformed request'
  ])
  t.match(lines[2]?.[1], { inResponse: true })

  t.equal(clientErrorCode(error('ERR_HTTP_REQUEST_TIMEOUT')), 'PAVE_PROXY_REQUEST_TIMEOUT')
  t.match(rawErrorResponse('PAVE_PROXY_REQUEST_TIMEOUT'), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*\r\ncontent-length: \d+\r\n\r\n\{"message":"The request was not received in time\.","code":"PAVE_PROXY_REQUEST_TIMEOUT"\}$/)
})

t.test('how often Node checks the caller timeouts', async (t) => {
  t.equal(connectionsCheckingInterval({ headersTimeoutMs: 10_000, requestTimeoutMs: 300_000 }), 1_000, 'the defaults: every second')
  t.equal(connectionsCheckingInterval({ headersTimeoutMs: 600, requestTimeoutMs: 1_500 }), 150)
  t.equal(connectionsCheckingInterval({ headersTimeoutMs: 2_000, requestTimeoutMs: 400 }), 100)
  t.equal(connectionsCheckingInterval({ headersTimeoutMs: 1, requestTimeoutMs: 0 }), 50, 'never more often than every 50 ms; 0 disables the request timeout')
})
