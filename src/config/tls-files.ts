/**
 * The listener's TLS files, read when the configuration is loaded (at start and on
 * every reload) and checked the way the listener will use them, so that a broken
 * certificate or key is a configuration problem naming the setting — at start an
 * exit with code 2, on a reload a refusal that leaves the running certificate in place.
 *
 * Checked: `certFile` and `keyFile` both or neither; a client CA only with them;
 * `clientAuth` only with a client CA (default `request` when there is one); each file
 * readable; the certificate file holds PEM certificates that parse; the key parses and
 * belongs to the first certificate; the CA file holds PEM certificates that parse; and
 * OpenSSL accepts the whole set as a server context (key size, signature algorithms).
 * Problems name files and settings, never a file's contents.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { createSecureContext } from 'node:tls'

/** The lowest TLS version the listener speaks. */
export const LISTENER_MIN_TLS_VERSION = 'TLSv1.2'

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g

export interface TlsFileAccess {
  /** The operator's name for a `tls.*` key (`PAVE_PROXY_TLS_CERT_FILE`, `tls.certFile (…)`). */
  readonly label: (key: 'certFile' | 'keyFile' | 'clientCaFile' | 'clientAuth') => string
  /** An absolute path for a configured one. */
  readonly resolve: (path: string) => string
  readonly readFile: (path: string) => string
}

/**
 * Reads the files named by the merged `tls` settings into `cert`, `key` and `clientCa`
 * (paths made absolute) and returns every problem found. `tls` is the raw object the
 * loader merged; it is changed in place.
 */
export function readListenerTls (tls: Record<string, unknown>, access: TlsFileAccess): string[] {
  const problems: string[] = []
  const { label } = access
  for (const key of ['cert', 'key', 'clientCa']) {
    if (key in tls) problems.push(`tls.${key} is not a known setting (name a file: tls.${key}File)`)
  }
  const given = (key: string): string | undefined => (typeof tls[key] === 'string' && tls[key] !== '' ? tls[key] : undefined)
  const certFile = given('certFile')
  const keyFile = given('keyFile')
  const clientCaFile = given('clientCaFile')
  if (certFile === undefined && keyFile !== undefined) problems.push(`${label('certFile')} is required with ${label('keyFile')}`)
  if (keyFile === undefined && certFile !== undefined) problems.push(`${label('keyFile')} is required with ${label('certFile')}`)
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) problems.push(`${label('clientCaFile')} needs TLS on the listener: set ${label('certFile')} and ${label('keyFile')}`)
    else if (tls.clientAuth !== undefined) problems.push(`${label('clientAuth')} needs TLS on the listener: set ${label('certFile')} and ${label('keyFile')}`)
  }
  if (clientCaFile === undefined && tls.clientAuth !== undefined && (certFile !== undefined || keyFile !== undefined)) {
    problems.push(`${label('clientAuth')} needs ${label('clientCaFile')}, the CA that verifies client certificates`)
  }
  if (clientCaFile !== undefined && tls.clientAuth === undefined) tls.clientAuth = 'request'

  const read = (key: 'certFile' | 'keyFile' | 'clientCaFile', path: string | undefined): string | undefined => {
    if (path === undefined) return undefined
    const absolute = access.resolve(path)
    tls[key] = absolute
    try {
      return access.readFile(absolute)
    } catch (error) {
      problems.push(`${label(key)}: cannot read ${absolute} (${codeOf(error)})`)
      return undefined
    }
  }
  const certPem = read('certFile', certFile)
  const keyPem = read('keyFile', keyFile)
  const caPem = read('clientCaFile', clientCaFile)

  const chain = certPem !== undefined ? parseCertificates(certPem) : undefined
  if (certPem !== undefined && chain === undefined) problems.push(`${label('certFile')}: ${tls.certFile as string} holds no PEM certificate that parses (-----BEGIN CERTIFICATE-----)`)
  let privateKey: KeyObject | undefined
  if (keyPem !== undefined) {
    try {
      privateKey = createPrivateKey(keyPem)
    } catch {
      problems.push(`${label('keyFile')}: ${tls.keyFile as string} holds no private key that can be read (PEM, unencrypted)`)
    }
  }
  if (caPem !== undefined && parseCertificates(caPem) === undefined) {
    problems.push(`${label('clientCaFile')}: ${tls.clientCaFile as string} holds no PEM certificate that parses (-----BEGIN CERTIFICATE-----)`)
  }
  if (chain !== undefined && privateKey !== undefined && !(chain[0] as X509Certificate).checkPrivateKey(privateKey)) {
    problems.push(`${label('keyFile')}: the key in ${tls.keyFile as string} does not belong to the certificate in ${tls.certFile as string}`)
  }
  if (problems.length > 0 || certPem === undefined || keyPem === undefined) return problems

  // What OpenSSL itself refuses (a key too small for its security level, a weak signature).
  try {
    createSecureContext({ cert: certPem, key: keyPem, ...(caPem !== undefined ? { ca: caPem } : {}), minVersion: LISTENER_MIN_TLS_VERSION })
  } catch (error) {
    problems.push(`${label('certFile')}: OpenSSL refuses this certificate and key (${codeOf(error)})`)
    return problems
  }
  tls.cert = certPem
  tls.key = keyPem
  if (caPem !== undefined) tls.clientCa = caPem
  return problems
}

/** An error's code for a problem line (`ENOENT`, `ERR_SSL_EE_KEY_TOO_SMALL`…), never its message. */
function codeOf (error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error'
}

/** Every certificate block of a PEM text, parsed; `undefined` when there is none or one does not parse. */
export function parseCertificates (pem: string): X509Certificate[] | undefined {
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? []
  if (blocks.length === 0) return undefined
  try {
    return blocks.map((block) => new X509Certificate(block))
  } catch {
    return undefined
  }
}
