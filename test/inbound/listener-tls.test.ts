import t from 'tap'
import { createServer as createHttpsServer } from 'node:https'
import type { IncomingMessage } from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createConnection, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { request } from 'undici'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { startTlsProxy, tlsAgent } from '../helpers/tls-proxy.js'
import { makeClientCa } from '../fixtures/client-ca.js'
import { verifiedPeerIdentity } from '../../src/inbound/client-cert.js'

const pki = makeClientCa()
t.teardown(pki.cleanup)

/** Opens a raw TLS connection; resolves with the negotiated facts or the error. */
async function handshake (port: number, options: ConnectionOptions): Promise<{ protocol: string | null, alpn: string | false | null, peerSerial: string } | { error: string }> {
  return await new Promise((resolve) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca: pki.caPem, ...options }, () => {
      const answer = { protocol: socket.getProtocol(), alpn: socket.alpnProtocol, peerSerial: socket.getPeerCertificate().serialNumber }
      socket.end()
      resolve(answer)
    })
    socket.on('error', (error: NodeJS.ErrnoException) => { resolve({ error: error.code ?? error.message }) })
  })
}

/** A TLS session (1.2: the session; 1.3: the first ticket) from a new connection. */
async function tlsSession (port: number, version: 'TLSv1.2' | 'TLSv1.3'): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: pki.caPem, maxVersion: version, minVersion: version })
    socket.once('session', (session: Buffer) => { resolve(session); socket.end() })
    socket.on('error', reject)
  })
}

/** Whether a new connection offering `session` resumed it. */
async function resumes (port: number, session: Buffer, version: 'TLSv1.2' | 'TLSv1.3'): Promise<boolean> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: pki.caPem, session, maxVersion: version, minVersion: version }, () => {
      resolve(socket.isSessionReused())
      socket.end()
    })
    socket.on('error', reject)
  })
}

/** One raw HTTP/1.1 exchange over TLS, returning everything the proxy wrote. */
async function rawTls (port: number, text: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    let answer = ''
    const socket = connect({ host: '127.0.0.1', port, ca: pki.caPem, ALPNProtocols: ['http/1.1'] }, () => { socket.write(text) })
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
    socket.on('end', () => { resolve(answer) })
    socket.on('error', reject)
  })
}

t.test('the proxy serves HTTPS: signs and forwards as over plain HTTP; TLS 1.2 or 1.3, HTTP/1.1', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki })
  const agent = tlsAgent(pki)
  t.teardown(async () => { await agent.close(); await proxy.close(); await upstream.close() })

  const res = await request(`${proxy.url}/v1/sessions?x=1`, { dispatcher: agent, method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { method: 'POST', url: '/v1/sessions?x=1', signedBy: ACCOUNT.username, bytes: 7 })
  t.equal(upstream.received.length, 1)

  const plain = await request(`http://127.0.0.1:${proxy.port}/healthz`).then(() => 'answered', (error: Error) => error.name)
  t.not(plain, 'answered', 'plain HTTP on the TLS port gets no answer')

  const tls13 = await handshake(proxy.port, { ALPNProtocols: ['h2', 'http/1.1'] })
  t.match(tls13, { protocol: 'TLSv1.3', alpn: 'http/1.1' }, 'offered h2 and http/1.1: http/1.1 chosen')
  t.match(await handshake(proxy.port, { maxVersion: 'TLSv1.2' }), { protocol: 'TLSv1.2' }, 'a TLS 1.2 client is served')
  t.match(await handshake(proxy.port, { ALPNProtocols: ['h2'] }), { error: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' }, 'an h2-only client is refused')
  t.equal(upstream.received.length, 1, 'no handshake-only connection reached the upstream')
})

t.test('a TLS 1.1 client is refused at the handshake (the same client reaches a server that allows TLS 1.1)', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki })
  // The control: this client really speaks TLS 1.1 when a server allows it.
  const legacy = createHttpsServer({ cert: pki.server.cert, key: pki.server.key, minVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, (_req, res) => { res.end() })
  await new Promise<void>((resolve) => legacy.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await proxy.close(); await upstream.close(); await new Promise((resolve) => legacy.close(resolve)) })
  const tls11: ConnectionOptions = { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }
  t.match(await handshake((legacy.address() as AddressInfo).port, tls11), { protocol: 'TLSv1.1' }, 'control: TLS 1.1 negotiated elsewhere')
  t.match(await handshake(proxy.port, tls11), { error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, 'the proxy answers with a protocol_version alert')
  t.match(await handshake(proxy.port, { ...tls11, minVersion: 'TLSv1', maxVersion: 'TLSv1' }), { error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, 'and TLS 1.0 too')
})

t.test('probes and /metrics over TLS; the certificate expiry gauges', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki, clientAuth: 'request' })
  const agent = tlsAgent(pki)
  t.teardown(async () => { await agent.close(); await proxy.close(); await upstream.close() })
  for (const path of ['/healthz', '/readyz']) {
    const res = await request(`${proxy.url}${path}`, { dispatcher: agent })
    t.equal(res.statusCode, 200, `${path} without a client certificate`)
    t.match(await res.body.json(), { status: path === '/healthz' ? 'ok' : 'ready' })
  }
  const metrics = await (await request(`${proxy.url}/metrics`, { dispatcher: agent })).body.text()
  const expiry = (label: string): number => Number(new RegExp(`pave_proxy_tls_certificate_expiry_timestamp_seconds\\{certificate="${label}"\\} (\\S+)`).exec(metrics)?.[1])
  const days = (seconds: number): number => Math.round((seconds * 1000 - Date.now()) / 86_400_000)
  t.equal(days(expiry('server')), 2, 'the server certificate: two days left')
  t.equal(days(expiry('client_ca')), 3, 'the client CA: three days left')
  t.equal(upstream.received.length, 0, 'nothing forwarded')
})

t.test('the HTTP listener settings hold over TLS: header size limit, no Host', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki, env: { } })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const big = await rawTls(proxy.port, `GET /v1/callbacks HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.match(big, /^HTTP\/1\.1 431 /, 'larger than inbound.maxHeaderSize: 431')
  const noHost = await rawTls(proxy.port, 'GET /v1/callbacks HTTP/1.1\r\nConnection: close\r\n\r\n')
  t.match(noHost, /^HTTP\/1\.1 400 /)
  t.match(noHost, /PAVE_PROXY_REQUEST_BAD/, 'the proxy\'s JSON 400, not Node\'s bare one')
  t.equal(upstream.received.length, 0)
})

t.test('clientAuth through the proxy: request lets every caller in, require only a verified certificate', async (t) => {
  const upstream = await startUpstream()
  const requesting = await startTlsProxy({ upstreamUrl: upstream.url, pki, clientAuth: 'request' })
  const requiring = await startTlsProxy({ upstreamUrl: upstream.url, pki, clientAuth: 'require' })
  // What a later stage sees: the module reads the caller's socket inside the proxy.
  const identities: unknown[] = []
  requesting.app.server.on('request', (req: IncomingMessage) => { identities.push(verifiedPeerIdentity(req.socket) ?? null) })
  t.teardown(async () => { await requesting.close(); await requiring.close(); await upstream.close() })

  const clients = { good: pki.clients.good, expired: pki.clients.expired, otherCa: pki.clients.otherCa, none: undefined }
  for (const [name, client] of Object.entries(clients)) {
    const agent = tlsAgent(pki, client)
    const viaRequest = await request(`${requesting.url}/v1/callbacks`, { dispatcher: agent }).then((r) => r.statusCode, (e: NodeJS.ErrnoException) => e.code)
    const viaRequire = await request(`${requiring.url}/v1/callbacks`, { dispatcher: agent }).then((r) => r.statusCode, (e: NodeJS.ErrnoException) => e.code)
    await agent.close()
    t.equal(viaRequest, 200, `request, ${name}: served`)
    if (name === 'good') t.equal(viaRequire, 200, 'require, good: served')
    else t.not(viaRequire, 200, `require, ${name}: refused (${String(viaRequire)})`)
  }
  t.same(identities, [{ uris: [pki.goodIdentity.uri], dns: [pki.goodIdentity.dns], subject: pki.goodIdentity.subject }, null, null, null])
  t.equal(upstream.received.length, 5, 'four through request, one through require')
})

t.test('app.reload: new material is swapped first; what OpenSSL refuses leaves everything as it was', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const config = proxy.app.currentConfig()
  const tls = config.tls as NonNullable<typeof config.tls>
  const serial = async (): Promise<unknown> => (await handshake(proxy.port, {}) as { peerSerial: string }).peerSerial
  const first = await serial()
  const session = await tlsSession(proxy.port, 'TLSv1.2')
  const ticket = await tlsSession(proxy.port, 'TLSv1.3')
  t.equal(await resumes(proxy.port, session, 'TLSv1.2'), true, 'control: a TLS 1.2 session resumes before the swap')
  t.equal(await resumes(proxy.port, ticket, 'TLSv1.3'), true, 'control: a TLS 1.3 ticket resumes before the swap')

  // A configuration that did not come through loadConfig (which would have refused it).
  const broken = { ...config, logLevel: 'warn', tls: { ...tls, key: pki.serverNext.key } }
  t.equal(proxy.app.reload(broken), false)
  t.equal(proxy.app.currentConfig(), config, 'nothing applied')
  t.equal(proxy.app.log.level, 'trace', 'not even the log level')
  t.equal(await serial(), first, 'the running certificate stays')
  t.match(await proxy.app.metrics.registry.metrics(), /pave_proxy_config_last_reload_successful 0\n/, 'the refused swap shows as a rejected reload')
  const refusal = proxy.logs.find((l) => l.includes('listener TLS certificate, key or client CA was refused'))
  t.match(refusal, /"code":"ERR_OSSL_X509_KEY_VALUES_MISMATCH"|"code":"ERR_SSL_/, 'the refusal names OpenSSL\'s code')
  t.notMatch(proxy.logs.join('\n'), pki.serverNext.key.split('\n')[1] as string, 'never the key')

  const next = { ...config, tls: { ...tls, cert: pki.serverNext.cert, key: pki.serverNext.key } }
  t.equal(proxy.app.reload(next), true)
  t.not(await serial(), first, 'the next certificate is served to new connections')
  t.equal(await resumes(proxy.port, session, 'TLSv1.2'), false, 'a TLS 1.2 session from before the swap does not resume')
  t.equal(await resumes(proxy.port, ticket, 'TLSv1.3'), false, 'nor a TLS 1.3 ticket')

  const off = { ...next, tls: undefined }
  t.equal(proxy.app.reload(off), true, 'turning TLS off is reported as needing a restart…')
  t.match(proxy.logs.at(-1), /"restartNeeded":\["tls"\]/)
  t.match(await handshake(proxy.port, {}), { protocol: 'TLSv1.3' }, '…and TLS stays on')

  const metrics = await proxy.app.metrics.registry.metrics()
  t.match(metrics, /pave_proxy_tls_reloads_total\{result="applied"\} 1\n/)
  t.match(metrics, /pave_proxy_tls_reloads_total\{result="rejected"\} 1\n/)
  t.match(metrics, /pave_proxy_config_reloads_total\{result="rejected"\} 1\n/)
  t.match(metrics, /pave_proxy_config_last_reload_successful 1\n/, 'and the reloads after it were applied')
})

t.test('a connection that never finishes its handshake is closed after inbound.headersTimeoutMs, not Node\'s 120 s', async (t) => {
  const upstream = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-handshake-'))
  writeFileSync(join(dir, 'pave-proxy.yaml'), 'inbound:\n  headersTimeoutMs: 1000\n')
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki, configFile: join(dir, 'pave-proxy.yaml') })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const started = Date.now()
  const closedAfter = await new Promise<number>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port: proxy.port }) // TCP only: no ClientHello ever
    socket.on('close', () => { resolve(Date.now() - started) })
    socket.on('error', () => { /* a reset is a close too */ })
  })
  t.ok(closedAfter >= 900 && closedAfter < 5000, `closed after ${closedAfter} ms`)
})

t.test('refused handshakes leave no socket behind (TLS 1.1, h2 only, no certificate under require, garbage)', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki, clientAuth: 'require' })
  t.teardown(async () => { await proxy.close(); await upstream.close() })
  const refused = [
    await handshake(proxy.port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    await handshake(proxy.port, { ALPNProtocols: ['h2'] })
  ]
  t.match(refused, [{ error: String }, { error: String }])
  const noCertificate = await request(`${proxy.url}/healthz`, { dispatcher: tlsAgent(pki) }).then(() => 'answered', (e: NodeJS.ErrnoException) => e.code)
  t.not(noCertificate, 'answered')
  // Bytes that are not TLS at all, from a caller that then keeps its side open.
  const garbage = createConnection({ host: '127.0.0.1', port: proxy.port })
  garbage.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  const closedByProxy = await new Promise<boolean>((resolve) => { garbage.on('close', () => { resolve(true) }); garbage.on('error', () => {}) })
  t.ok(closedByProxy, 'plain HTTP bytes: the proxy closes the connection')
  const open = async (): Promise<number> => await new Promise((resolve) => { proxy.app.server.getConnections((_e, n) => { resolve(n) }) })
  const started = Date.now()
  while (await open() > 0 && Date.now() - started < 3000) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await open(), 0, 'no connection left open on the proxy')
  t.equal(upstream.received.length, 0)
})

t.test('TLS 1.2 renegotiation is refused (a server that allows it renegotiates with the same client)', async (t) => {
  const upstream = await startUpstream()
  const proxy = await startTlsProxy({ upstreamUrl: upstream.url, pki, clientAuth: 'request' })
  const allowing = createHttpsServer({ cert: pki.server.cert, key: pki.server.key }, (_req, res) => { res.end() })
  await new Promise<void>((resolve) => allowing.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await proxy.close(); await upstream.close(); allowing.closeAllConnections(); await new Promise((resolve) => allowing.close(resolve)) })
  const renegotiate = async (port: number): Promise<string> => await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: pki.caPem, maxVersion: 'TLSv1.2', cert: pki.clients.good.cert, key: pki.clients.good.key }, () => {
      socket.renegotiate({ rejectUnauthorized: true }, (error) => {
        if (error !== null) return resolve(`failed: ${(error as NodeJS.ErrnoException).code ?? error.message}`)
        socket.end()
        resolve('renegotiated')
      })
    })
    socket.on('error', (error: NodeJS.ErrnoException) => { resolve(`failed: ${error.code ?? error.message}`) })
    socket.on('close', () => { resolve('closed') })
  })
  t.equal(await renegotiate((allowing.address() as AddressInfo).port), 'renegotiated', 'control')
  t.not(await renegotiate(proxy.port), 'renegotiated', 'the proxy refuses it')
})
