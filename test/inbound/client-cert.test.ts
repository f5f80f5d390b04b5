import t from 'tap'
import { createServer, type Server } from 'node:https'
import { createServer as createPlainServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'
import {
  certificateMatches, normalizeSubject, parseSubjectAltNames, rfc4514Subject, verifiedPeerIdentity, type CertificateIdentity
} from '../../src/inbound/client-cert.js'
import { listenerTlsOptions, manageListenerTls } from '../../src/inbound/listener-tls.js'
import type { ClientAuth, TlsConfig } from '../../src/config/schema.js'
import { createMetrics } from '../../src/observe/metrics.js'
import { pino } from 'pino'
import { makeClientCa, type PemPair } from '../fixtures/client-ca.js'

const pki = makeClientCa()
t.teardown(pki.cleanup)

function tlsConfig (clientAuth: ClientAuth): TlsConfig {
  return { certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: pki.caFile, clientAuth, cert: pki.server.cert, key: pki.server.key, clientCa: pki.caPem }
}

interface Seen { identity: CertificateIdentity | undefined, authorized: boolean, error: string | undefined }

/** An HTTPS server with the listener's own TLS options, answering what the module made of each caller's certificate. */
async function startListener (clientAuth: ClientAuth): Promise<{ url: string, server: Server, seen: Seen[], close: () => Promise<void> }> {
  const seen: Seen[] = []
  const server = createServer(listenerTlsOptions(tlsConfig(clientAuth)), (req, res) => {
    const socket = req.socket as TLSSocket
    const identity = verifiedPeerIdentity(socket)
    seen.push({ identity, authorized: socket.authorized, error: socket.authorizationError?.toString() })
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(identity ?? null))
  })
  manageListenerTls(server, tlsConfig(clientAuth), createMetrics({ processMetrics: false }), pino({ level: 'silent' }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    server,
    seen,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}

async function call (url: string, client: PemPair | undefined): Promise<{ status: number, body: unknown } | { error: string }> {
  const agent = new Agent({ connect: { ca: pki.caPem, ...(client !== undefined ? { cert: client.cert, key: client.key } : {}) } })
  try {
    const res = await request(`${url}/whoami`, { dispatcher: agent })
    return { status: res.statusCode, body: await res.body.json() }
  } catch (error) {
    const err = error as NodeJS.ErrnoException
    return { error: err.code ?? err.message }
  } finally {
    await agent.close()
  }
}

const GOOD = { uris: ['spiffe://cluster.local/ns/ops/sa/console'], dns: ['console.ops.svc'], subject: 'CN=ops-console' }

t.test('clientAuth: request — a good certificate proves its names; expired, other-CA and no certificate prove nothing but get in', async (t) => {
  const listener = await startListener('request')
  t.teardown(listener.close)

  t.same(await call(listener.url, pki.clients.good), { status: 200, body: GOOD }, 'good: SAN URI, SAN DNS and subject')
  t.same(await call(listener.url, pki.clients.expired), { status: 200, body: null }, 'expired: accepted, no identity')
  t.same(await call(listener.url, pki.clients.otherCa), { status: 200, body: null }, 'another CA: accepted, no identity')
  t.same(await call(listener.url, undefined), { status: 200, body: null }, 'no certificate: accepted, no identity')
  t.same(await call(listener.url, pki.clients.nonMatching), {
    status: 200, body: { uris: ['spiffe://cluster.local/ns/web/sa/shop'], dns: ['shop.web.svc'], subject: 'CN=shop' }
  }, 'non-matching: its own names')
  t.same(await call(listener.url, pki.clients.multiRdn), { status: 200, body: { uris: [], dns: [], subject: 'CN=reporting,OU=Ops,O=Acme,C=DE' } },
    'subject in RFC 4514 order (last RDN first); no SAN, no names')

  t.same(listener.seen.map((s) => s.authorized), [true, false, false, false, true, true], 'what the handshake decided')
  t.equal(listener.seen[1]?.error, 'CERT_HAS_EXPIRED')
  t.equal(listener.seen[2]?.error, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  t.type(listener.seen[3]?.error, 'string', `no certificate: ${String(listener.seen[3]?.error)}`)
})

t.test('clientAuth: require — only a certificate the CA verifies gets through the handshake', async (t) => {
  const listener = await startListener('require')
  t.teardown(listener.close)
  t.same(await call(listener.url, pki.clients.good), { status: 200, body: GOOD })
  for (const [name, client] of [['expired', pki.clients.expired], ['another CA', pki.clients.otherCa], ['none', undefined]] as const) {
    const answer = await call(listener.url, client)
    t.ok('error' in answer, `${name}: refused at the handshake (${JSON.stringify(answer)})`)
  }
  t.equal(listener.seen.length, 1, 'only the good caller reached a request handler')
})

t.test('certificateMatches: exact URI, DNS case-insensitively, the subject with spaces around separators ignored', async (t) => {
  const good: CertificateIdentity = GOOD
  t.ok(certificateMatches(good, { uri: 'spiffe://cluster.local/ns/ops/sa/console' }))
  t.notOk(certificateMatches(good, { uri: 'spiffe://cluster.local/ns/ops/sa/console2' }))
  t.notOk(certificateMatches(good, { uri: 'spiffe://cluster.local/ns/ops/sa' }), 'no prefix match')
  t.ok(certificateMatches(good, { dns: 'Console.OPS.svc' }))
  t.notOk(certificateMatches(good, { dns: 'ops.svc' }))
  t.notOk(certificateMatches(good, { dns: '*.ops.svc' }), 'no wildcard semantics')
  t.ok(certificateMatches(good, { subject: 'CN=ops-console' }))
  t.ok(certificateMatches(good, { subject: ' CN = ops-console ' }))
  t.notOk(certificateMatches(good, { subject: 'CN=ops-console,O=Acme' }), 'the whole subject, not a part of it')
  t.notOk(certificateMatches(good, { subject: 'cn=ops-console' }), 'attribute types as OpenSSL writes them')
  const multi: CertificateIdentity = { uris: [], dns: [], subject: 'CN=reporting,OU=Ops,O=Acme,C=DE' }
  t.ok(certificateMatches(multi, { subject: 'CN=reporting, OU=Ops, O=Acme, C=DE' }))
  t.notOk(certificateMatches(multi, { subject: 'C=DE,O=Acme,OU=Ops,CN=reporting' }), 'certificate order is not RFC 4514 order')
})

t.test('in date on every call: a long-lived connection whose certificate expired proves nothing any more', async (t) => {
  const listener = await startListener('request')
  t.teardown(listener.close)
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(listener.url).port), ca: pki.caPem, cert: pki.clients.good.cert, key: pki.clients.good.key, ALPNProtocols: ['http/1.1'] })
  t.teardown(() => socket.destroy())
  const serverSide = await new Promise<TLSSocket>((resolve) => listener.server.once('secureConnection', resolve))
  const validFrom = Date.parse('2000-01-01T00:00:00Z')
  t.same(verifiedPeerIdentity(serverSide), GOOD)
  t.same(verifiedPeerIdentity(serverSide), GOOD, 'read once, the same answer again')
  t.equal(verifiedPeerIdentity(serverSide, Date.now() + 3 * 86_400_000), undefined, 'after notAfter')
  t.equal(verifiedPeerIdentity(serverSide, validFrom), undefined, 'before notBefore')
})

t.test('a plain TCP socket proves nothing', async (t) => {
  const server = createPlainServer((req, res) => { res.end(JSON.stringify(verifiedPeerIdentity(req.socket) ?? null)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  t.equal(await res.body.text(), 'null')
})

t.test('the text forms Node gives, read exactly', async (t) => {
  t.same(parseSubjectAltNames('URI:spiffe://a/b, DNS:x.svc, IP Address:127.0.0.1, email:a@b.c'), ['URI:spiffe://a/b', 'DNS:x.svc', 'IP Address:127.0.0.1', 'email:a@b.c'])
  t.same(parseSubjectAltNames('DNS:"a\\u002c b", URI:"https://x.example/a\\u002cb"'), ['DNS:a, b', 'URI:https://x.example/a,b'], 'JSON-quoted values')
  t.same(parseSubjectAltNames('DNS:"unterminated'), [], 'not Node\'s format: nothing is read')
  t.same(parseSubjectAltNames(''), [])
  t.equal(rfc4514Subject('C=US\nO=Acme\\, Inc.\nCN=x + OU=Ops\nCN=ops-console'), 'CN=ops-console,CN=x+OU=Ops,O=Acme\\, Inc.,C=US')
  t.equal(rfc4514Subject(undefined), '')
  t.equal(rfc4514Subject(''), '')
  t.equal(normalizeSubject('CN = a\\, b , O=x\\ '), 'CN=a\\, b,O=x\\ ', 'escaped separators and an escaped trailing space stay')
  t.equal(normalizeSubject('CN=a=b'), 'CN=a=b', '"=" inside a value')
  t.equal(normalizeSubject('justtext'), 'justtext=', 'a part without "=" (matches nothing a certificate has)')
  t.equal(normalizeSubject('CN=x\\\\ '), 'CN=x\\\\', 'an escaped backslash before a space: the space is trimmed')
})

t.test('a resumed TLS session carries its verification: the identity again, or still nothing', async (t) => {
  const listener = await startListener('request')
  t.teardown(listener.close)
  const port = Number(new URL(listener.url).port)
  const seen: Array<{ reused: boolean, identity: CertificateIdentity | undefined }> = []
  listener.server.on('secureConnection', (socket: TLSSocket) => { seen.push({ reused: socket.isSessionReused(), identity: verifiedPeerIdentity(socket) }) })
  const open = async (client: PemPair, session?: Buffer): Promise<Buffer> => await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: pki.caPem, cert: client.cert, key: client.key, maxVersion: 'TLSv1.2', ...(session !== undefined ? { session } : {}) }, () => {
      resolve(socket.getSession() as Buffer)
      socket.end()
    })
    socket.on('error', reject)
  })
  for (const client of [pki.clients.good, pki.clients.expired]) {
    const session = await open(client)
    await open(client, session)
  }
  // In a resumed TLS 1.2 handshake the server finishes after the client.
  for (let i = 0; i < 100 && seen.length < 4; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(seen.map((s) => s.reused), [false, true, false, true], 'the second connection of each resumed the first one\'s session')
  t.same(seen.map((s) => s.identity), [GOOD, GOOD, undefined, undefined])
})
