import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { request } from 'undici'
import { ACCOUNT, startUpstream } from '../helpers/upstream.js'
import { collect, spawnMain, waitForOutput } from '../helpers/spawn.js'
import { tlsAgent } from '../helpers/tls-proxy.js'
import { makeClientCa } from '../fixtures/client-ca.js'

const pki = makeClientCa()
t.teardown(pki.cleanup)

/** A Kubernetes-style TLS secret volume: `tls.crt` → `..data/tls.crt`, swapped whole by renaming `..data`. */
function tlsVolume (): { certFile: string, keyFile: string, swap: (cert: string, key: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-tls-volume-'))
  let generation = 0
  const swap = (cert: string, key: string): void => {
    const data = join(dir, `..2026_tls_${generation++}`)
    mkdirSync(data)
    writeFileSync(join(data, 'tls.crt'), cert)
    writeFileSync(join(data, 'tls.key'), key)
    symlinkSync(data, join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data')) // the kubelet's atomic swap
  }
  swap(pki.server.cert, pki.server.key)
  symlinkSync(join('..data', 'tls.crt'), join(dir, 'tls.crt'))
  symlinkSync(join('..data', 'tls.key'), join(dir, 'tls.key'))
  return { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), swap }
}

/** The serial number of the certificate a new connection is served. */
async function servedSerial (port: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: pki.caPem }, () => {
      resolve(socket.getPeerCertificate().serialNumber)
      socket.end()
    })
    socket.on('error', reject)
  })
}

async function waitForCount (read: () => string, text: string, count: number): Promise<void> {
  const started = Date.now()
  while (read().split(text).length - 1 < count) {
    if (Date.now() - started > 10_000) throw new Error(`"${text}" did not appear ${count} times in: ${read()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const serial = (pem: string): string => new X509Certificate(pem).serialNumber

t.test('the listener certificate is swapped under a request loop: zero failures, no connection dropped, broken pairs refused', async (t) => {
  const upstream = await startUpstream()
  const volume = tlsVolume()
  const child = spawnMain([], {
    PAVE_USERNAME: ACCOUNT.username,
    PAVE_API_KEY: ACCOUNT.apiKey,
    PAVE_API_SECRET: ACCOUNT.secret,
    PAVE_UPSTREAM_URL: upstream.url,
    PAVE_PROXY_TLS_CERT_FILE: volume.certFile,
    PAVE_PROXY_TLS_KEY_FILE: volume.keyFile,
    PORT: '0',
    PAVE_PROXY_SHUTDOWN_DELAY_MS: '0'
  })
  const output = collect(child)
  t.teardown(async () => { child.kill('SIGKILL'); await upstream.close() })
  const [, portText] = await waitForOutput(output.stdout, /Server listening at https:\/\/127\.0\.0\.1:(\d+)/)
  const port = Number(portText)
  const base = `https://127.0.0.1:${port}`
  t.equal(await servedSerial(port), serial(pki.server.cert), 'starts with the first certificate')

  // Two keep-alive connections held for the whole run, and one loop that opens a new connection per request.
  const kept = tlsAgent(pki, undefined, { connections: 2 })
  let keptConnects = 0
  let keptDisconnects = 0
  kept.on('connect', () => { keptConnects++ })
  kept.on('disconnect', () => { keptDisconnects++ })
  const fresh = tlsAgent(pki)
  let running = true
  let sent = 0
  const failures: string[] = []
  const loop = async (agent: typeof kept, reset: boolean): Promise<void> => {
    while (running) {
      sent++
      try {
        const res = await request(`${base}/v1/callbacks`, { dispatcher: agent, reset })
        await res.body.dump()
        if (res.statusCode !== 200) failures.push(String(res.statusCode))
      } catch (error) {
        failures.push((error as NodeJS.ErrnoException).code ?? String(error))
      }
    }
  }
  const loops = [loop(kept, false), loop(kept, false), loop(fresh, true)]
  const pause = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 300)) }

  await pause()
  volume.swap(pki.serverNext.cert, pki.serverNext.key)
  await waitForCount(output.stdout, 'listener TLS certificate swapped', 1)
  t.equal(await servedSerial(port), serial(pki.serverNext.cert), 'new connections get the new certificate')
  await pause()

  // A key that does not belong to the certificate, then a certificate that does not parse: both refused.
  volume.swap(pki.server.cert, pki.serverNext.key)
  await waitForCount(output.stdout, 'the new configuration is invalid', 1)
  t.equal(await servedSerial(port), serial(pki.serverNext.cert), 'mismatched pair refused: the running certificate stays')
  await pause()
  volume.swap('-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n', pki.server.key)
  await waitForCount(output.stdout, 'the new configuration is invalid', 2)
  t.equal(await servedSerial(port), serial(pki.serverNext.cert), 'unparsable certificate refused: the running certificate stays')
  await pause()

  volume.swap(pki.server.cert, pki.server.key)
  await waitForCount(output.stdout, 'listener TLS certificate swapped', 2)
  t.equal(await servedSerial(port), serial(pki.server.cert), 'a good pair after the broken ones is applied')
  await pause()

  running = false
  await Promise.all(loops)
  t.same(failures, [], `zero failed requests out of ${sent}`)
  t.ok(sent > 30, `${sent} requests sent`)
  t.equal(keptConnects, 2, 'the two keep-alive connections were opened once…')
  t.equal(keptDisconnects, 0, '…and never dropped across four swaps')

  const metrics = await (await request(`${base}/metrics`, { dispatcher: kept })).body.text()
  t.match(metrics, /pave_proxy_tls_reloads_total\{result="applied"\} 2\n/)
  t.match(metrics, /pave_proxy_tls_reloads_total\{result="rejected"\} 2\n/)
  t.match(metrics, /pave_proxy_config_reloads_total\{result="rejected"\} 2\n/)
  await kept.close()
  await fresh.close()

  const logs = output.stdout()
  t.match(logs, /the key in \S+tls\.key does not belong to the certificate in \S+tls\.crt/, 'the refusal says why, by file')
  for (const key of [pki.server.key, pki.serverNext.key]) {
    for (const line of key.split('\n').filter((l) => l.length > 20)) t.notMatch(logs, line, 'no key material in the logs')
  }
  t.match(logs, /"subject":"CN=pave-proxy test listener \(next\)","serialNumber":"[0-9A-F]+","validTo":"[^"]+","fingerprint256":"[0-9A-F:]{95}"/, 'the swapped-in certificate is logged by its public facts')
  child.kill('SIGTERM')
  t.equal((await output.done).code, 0)
})
