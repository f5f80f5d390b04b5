/**
 * The identity a caller's client certificate proves, when the listener's client CA
 * verified it (TLS on the listener with `tls.clientCaFile`, see `listener-tls.ts`).
 *
 * What is read from the certificate:
 *
 * - `uris`: the SAN URIs, as written (`spiffe://cluster.local/ns/ops/sa/console`).
 * - `dns`: the SAN DNS names, lowercased (DNS names are case-insensitive).
 * - `subject`: the subject distinguished name in RFC 4514 form: the certificate's RDNs
 *   last first, joined by `,` (multi-valued RDNs by `+`), no spaces around separators,
 *   attribute types as OpenSSL names them (`CN`, `O`, `OU`, `C`, `L`, `ST`, `emailAddress`…),
 *   special characters in values escaped with `\` (`\,` `\+`). A certificate issued with
 *   `-subj /C=DE/O=Acme/CN=ops-console` has the subject `CN=ops-console,O=Acme,C=DE`.
 *
 * A certificate proves nothing unless the handshake verified it against the client CA
 * (`socket.authorized`), and nothing outside its validity dates, checked on every call
 * (a keep-alive connection can outlive its certificate).
 */
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { X509Certificate } from 'node:crypto'

export interface CertificateIdentity {
  /** SAN URIs, as written in the certificate. */
  readonly uris: readonly string[]
  /** SAN DNS names, lowercased. */
  readonly dns: readonly string[]
  /** The subject in RFC 4514 form, e.g. `CN=ops-console,O=Acme`. */
  readonly subject: string
}

/** How a configured caller names its certificate: one SAN URI, one SAN DNS name, or the whole subject. */
export type ClientCertMatch = { readonly uri: string } | { readonly dns: string } | { readonly subject: string }

interface Verified {
  readonly identity: CertificateIdentity
  readonly notBefore: number
  readonly notAfter: number
}

/**
 * Per connection: the certificate cannot change during a connection (the listener
 * disables TLS renegotiation; TLS 1.3 has none), so it is parsed once.
 */
const verifiedSockets = new WeakMap<TLSSocket, Verified>()

/**
 * The client certificate of a TLS socket, when the listener's client CA verified it
 * (and it is in date now); else `undefined` — a plain socket, no certificate, one
 * from another CA, or an expired one.
 */
export function verifiedPeerIdentity (socket: Socket, now: number = Date.now()): CertificateIdentity | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined
  let verified = verifiedSockets.get(socket)
  if (verified === undefined) {
    // `authorized` is only true when the peer sent a certificate the CA verified.
    verified = readCertificate(socket.getPeerX509Certificate() as X509Certificate)
    verifiedSockets.set(socket, verified)
  }
  if (now < verified.notBefore || now > verified.notAfter) return undefined
  return verified.identity
}

function readCertificate (certificate: X509Certificate): Verified {
  const uris: string[] = []
  const dns: string[] = []
  for (const name of parseSubjectAltNames(certificate.subjectAltName ?? '')) {
    if (name.startsWith('URI:')) uris.push(name.slice(4))
    else if (name.startsWith('DNS:')) dns.push(name.slice(4).toLowerCase())
  }
  return {
    identity: Object.freeze({ uris: Object.freeze(uris), dns: Object.freeze(dns), subject: rfc4514Subject(certificate.subject) }),
    notBefore: Date.parse(certificate.validFrom),
    notAfter: Date.parse(certificate.validTo)
  }
}

/** Whether a verified identity is the one a caller's `clientCert` names (exact; no wildcards either way). */
export function certificateMatches (identity: CertificateIdentity, match: ClientCertMatch): boolean {
  if ('uri' in match) return identity.uris.includes(match.uri)
  if ('dns' in match) return identity.dns.includes(match.dns.toLowerCase())
  return identity.subject === normalizeSubject(match.subject)
}

const normalized = new Map<string, string>()

/**
 * A subject as an operator writes it (`CN=ops-console, O=Acme`) in the form
 * {@link CertificateIdentity.subject} has: spaces around `,`, `+` and `=` removed.
 * Attribute types and values are compared as written (case-sensitive).
 */
export function normalizeSubject (subject: string): string {
  let result = normalized.get(subject)
  if (result === undefined) {
    result = splitUnescaped(subject, ',').map((rdn) => splitUnescaped(rdn, '+').map((pair) => {
      const [type, value] = splitAtFirstEquals(pair)
      return `${trimUnescaped(type)}=${trimUnescaped(value)}`
    }).join('+')).join(',')
    if (normalized.size < 1000) normalized.set(subject, result) // configured subjects: a handful
  }
  return result
}

/**
 * Node's multi-line subject (`C=DE\nO=Acme\nCN=x + OU=y`, certificate order, values
 * already escaped RFC 2253-style) in RFC 4514 order: `OU=y+CN=x,O=Acme,C=DE`… with each
 * multi-valued RDN's members kept in the order Node prints them.
 */
export function rfc4514Subject (nodeSubject: string | undefined): string {
  if (nodeSubject === undefined || nodeSubject === '') return ''
  return nodeSubject.split('\n').reverse()
    .map((rdn) => splitUnescaped(rdn, '+').map(trimUnescaped).join('+'))
    .join(',')
}

/**
 * Node's `subjectAltName` text (`DNS:a, URI:b, IP Address:…`) as a list of `TYPE:value`.
 * Node writes a value holding a separator or a quote as a JSON string
 * (`DNS:"a\u002c b"`), as its own `checkServerIdentity` reads it.
 */
export function parseSubjectAltNames (text: string): string[] {
  const names: string[] = []
  let current = ''
  let offset = 0
  while (offset < text.length) {
    const separator = text.indexOf(', ', offset)
    const quote = text.indexOf('"', offset)
    if (quote !== -1 && (separator === -1 || quote < separator)) {
      current += text.slice(offset, quote)
      const literal = JSON_STRING.exec(text.slice(quote))
      if (literal === null) return [] // not Node's format: read nothing rather than guess
      current += JSON.parse(literal[0]) as string
      offset = quote + literal[0].length
    } else if (separator !== -1) {
      names.push(current + text.slice(offset, separator))
      current = ''
      offset = separator + 2
    } else {
      names.push(current + text.slice(offset))
      current = ''
      offset = text.length
    }
  }
  if (current !== '') names.push(current)
  return names
}

// eslint-disable-next-line no-control-regex
const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/

/** Splits at each `separator` not escaped by a backslash. */
function splitUnescaped (text: string, separator: string): string[] {
  const parts: string[] = []
  let start = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++
    else if (text[i] === separator) {
      parts.push(text.slice(start, i))
      start = i + 1
    }
  }
  parts.push(text.slice(start))
  return parts
}

function splitAtFirstEquals (pair: string): [string, string] {
  const at = pair.indexOf('=')
  return at === -1 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)]
}

/** Trims spaces that are not escaped (`a\ ` keeps its escaped trailing space). */
function trimUnescaped (text: string): string {
  let start = 0
  let end = text.length
  while (start < end && text[start] === ' ') start++
  while (end > start && text[end - 1] === ' ' && !escapedAt(text, end - 1)) end--
  return text.slice(start, end)
}

/** Whether the character at `index` is preceded by an odd number of backslashes. */
function escapedAt (text: string, index: number): boolean {
  let count = 0
  for (let i = index - 1; i >= 0 && text[i] === '\\'; i--) count++
  return count % 2 === 1
}
