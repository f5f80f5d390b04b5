/**
 * Guards `Expect: 100-continue`, which curl and PHP's curl send for every body over
 * 1 MiB: Node answered the caller's `100 Continue`, the header was then passed on,
 * undici refused to send it (UND_ERR_NOT_SUPPORTED) and the caller got 502
 * PAVE_PROXY_UPSTREAM_UNREACHABLE without PAVE ever being contacted. `Expect` is
 * answered for this hop and never forwarded.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startProxy } from '../helpers/proxy.js'

const SIZE = 2 * 1024 * 1024
const body = Buffer.from(`{"x":"${'a'.repeat(SIZE - 8)}"}`)
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

function curlAvailable (): Promise<boolean> {
  return new Promise((resolve) => { execFile('curl', ['--version'], (error) => resolve(error === null)) })
}

const curlSkip = await curlAvailable() ? false : 'curl is not installed'

t.test('curl with Expect: 100-continue and a 2 MiB body: the body reaches PAVE, signed, without Expect', { skip: curlSkip }, async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-expect-'))
  t.teardown(async () => { await proxy.close(); await upstream.close(); rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'big.json')
  writeFileSync(file, body)

  const output = await new Promise<string>((resolve, reject) => {
    execFile('curl', ['-s', '-i', '-X', 'POST', '-H', 'content-type: application/json', '-H', 'Expect: 100-continue',
      '--data-binary', `@${file}`, `${proxy.url}/v1/sessions`], { maxBuffer: 1024 * 1024 }, (error, stdout) => {
      if (error !== null) reject(error)
      else resolve(stdout)
    })
  })
  t.match(output, /^HTTP\/1\.1 100 Continue\r\n/, 'the proxy answered the expectation itself')
  t.match(output, /\r\nHTTP\/1\.1 200 OK\r\n/, 'then PAVE\'s answer')
  t.notMatch(output, /x-pave-proxy-error/i)
  t.equal(upstream.received.length, 1)
  const received = upstream.received[0]!
  t.equal(received.signedBy, ACCOUNT.username)
  t.equal(received.body.length, body.length, 'every byte arrived')
  t.equal(sha256(received.body), sha256(body))
  t.notOk('expect' in received.headers, 'Expect is not forwarded')
})

t.test('node:http waiting for 100 Continue before sending a 2 MiB body', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startProxy({ upstreamUrl: upstream.url })
  t.teardown(async () => { await proxy.close(); await upstream.close() })

  const { status, continued, answer } = await new Promise<{ status: number, continued: boolean, answer: string }>((resolve, reject) => {
    let continued = false
    const req = httpRequest(`${proxy.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': body.length, expect: '100-continue' }
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, answer: text }))
    })
    req.on('continue', () => {
      continued = true
      req.end(body)
    })
    req.on('error', reject)
  })
  t.ok(continued, 'the caller got 100 Continue')
  t.equal(status, 200, answer)
  t.equal(JSON.parse(answer).bytes, body.length)
  const received = upstream.received[0]!
  t.equal(received.signedBy, ACCOUNT.username)
  t.equal(sha256(received.body), sha256(body))
  t.notOk('expect' in received.headers)
})
