/**
 * `npm run bench:stream`: what the request/response bench cannot show.
 *
 * 1. Streaming: a BENCH_STREAM_BYTES (1 GiB) upload and download through pave-proxy
 *    (body limit raised for the run with PAVE_PROXY_BODY_LIMIT), through the floor,
 *    and direct: throughput, its ratio to direct, and RSS growth during the transfer.
 * 2. The sidecar's real-world gain: a TLS upstream (certificates made at run time,
 *    verified against a throw-away CA) behind a relay adding BENCH_RELAY_DELAY_MS each
 *    way. BENCH_SIDECAR_CALLS sequential calls by an app that opens a fresh HTTPS
 *    connection per call, against the same calls over plain HTTP to pave-proxy,
 *    whose pooled keep-alive TLS connection is warm.
 * Prints tables and targets; writes bench/results/stream-latest.json.
 */
import { request as httpRequest } from 'node:http'
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { loadNote, setUp, progress, writeResult } from './lib/setup.js'
import { sleep, stopAll, which } from './lib/proc.js'
import { download, readAll, upload, type Transfer } from './lib/transfer.js'
import { paveProxyMissing, startFloor, startNodeUpstream, startPaveProxy, startRelay, type Running } from './lib/contenders.js'
import { makeCertificates } from './lib/tls.js'
import { signNow } from './lib/signing.js'
import { median } from './lib/stats.js'
import { fmtFixed, fmtMB, fmtRatio, MB, renderTable, renderTargets, type Target } from './lib/table.js'
import { BENCH_PATH, STATS_PATH } from './lib/fixture.js'

const ctx = setUp()
const { knobs, cores, tmp } = ctx

interface StreamContender {
  readonly name: string
  readonly skipped: string | undefined
  start (round: number): Promise<Running>
}

async function streaming (): Promise<{ table: string, targets: Target[], data: unknown, notes: string[] }> {
  const upstream = await startNodeUpstream(cores.upstream)
  const bytes = knobs.streamBytes
  const all: StreamContender[] = [
    { name: 'direct', skipped: undefined, start: async () => ({ ...upstream, name: 'direct', stop: async () => {} }) },
    { name: 'floor', skipped: undefined, start: () => startFloor(upstream.origin, cores.proxy) },
    {
      name: 'pave-proxy',
      skipped: paveProxyMissing(),
      start: (round) => startPaveProxy({
        upstream: upstream.origin,
        cores: cores.proxy,
        logFile: join(tmp, `pave-proxy-stream-${round}.log`),
        env: { PAVE_PROXY_BODY_LIMIT: String(Math.max(bytes * 2, 52_428_800)) },
        overrides: knobs.paveProxyEnv
      })
    }
  ]
  const contenders = all.filter((c) => c.name === 'direct' || knobs.contenders === undefined || knobs.contenders.includes(c.name))
  const notes: string[] = []
  for (const c of contenders) if (c.skipped !== undefined) notes.push(`${c.name} skipped: ${c.skipped}`)
  const results = new Map<string, { up: Transfer[], down: Transfer[], failures: string[] }>()
  for (let round = 1; round <= knobs.streamRuns; round++) {
    for (const contender of contenders.filter((c) => c.skipped === undefined)) {
      const entry = results.get(contender.name) ?? { up: [], down: [], failures: [] }
      results.set(contender.name, entry)
      let running: Running | undefined
      try {
        running = await contender.start(round)
        await sleep(500)
        const up = await upload(running.origin, bytes, running.pid)
        const down = await download(running.origin, bytes, running.pid)
        if (contender.name !== 'direct' && !(up.signed && down.signed)) throw new Error('the upstream did not see a valid signature')
        entry.up.push(up)
        entry.down.push(down)
        progress(`stream round ${round}/${knobs.streamRuns} ${contender.name}: upload ${fmtFixed(up.throughput, 0, ' MB/s')} (RSS +${fmtMB(up.growth)}), download ${fmtFixed(down.throughput, 0, ' MB/s')} (RSS +${fmtMB(down.growth)})`)
      } catch (error) {
        entry.failures.push(`round ${round}: ${(error as Error).message}`)
        progress(`stream round ${round} ${contender.name}: FAILED: ${(error as Error).message}`)
      } finally {
        await running?.stop().catch(() => {})
        rmSync(join(tmp, `pave-proxy-stream-${round}.log`), { force: true })
      }
    }
  }
  await upstream.stop()

  type Summary = { upMBps: number, downMBps: number, upGrowth: number, downGrowth: number, failures: string[] }
  const summary: Record<string, Summary> = {}
  for (const [name, entry] of results) {
    summary[name] = {
      upMBps: median(entry.up.map((t) => t.throughput)),
      downMBps: median(entry.down.map((t) => t.throughput)),
      upGrowth: median(entry.up.map((t) => t.growth)),
      downGrowth: median(entry.down.map((t) => t.growth)),
      failures: entry.failures
    }
  }
  const direct = summary.direct
  const rows = Object.entries(summary).map(([name, s]) => [
    name,
    fmtFixed(s.upMBps, 0, ' MB/s'),
    direct !== undefined ? fmtRatio(s.upMBps / direct.upMBps) : '—',
    name === 'direct' ? '—' : fmtMB(s.upGrowth),
    fmtFixed(s.downMBps, 0, ' MB/s'),
    direct !== undefined ? fmtRatio(s.downMBps / direct.downMBps) : '—',
    name === 'direct' ? '—' : fmtMB(s.downGrowth),
    String(s.failures.length)
  ])
  const size = bytes >= 1024 ** 3 ? `${fmtFixed(bytes / 1024 ** 3, bytes % 1024 ** 3 === 0 ? 0 : 2)} GiB` : `${fmtFixed(bytes / 1024 ** 2, 0)} MiB`
  const table = renderTable(
    ['contender', `upload ${size}`, '× direct', 'RSS growth', `download ${size}`, '× direct', 'RSS growth', 'failed'],
    rows,
    [false, true, true, true, true, true, true, true]
  )
  const pave = summary['pave-proxy']
  const growth = pave !== undefined ? Math.max(pave.upGrowth, pave.downGrowth) : Number.NaN
  const targets: Target[] = [{
    target: `pave-proxy RSS growth during a ${size} streamed transfer ≤ 32 MB`,
    measured: pave !== undefined ? `upload +${fmtMB(pave.upGrowth)}, download +${fmtMB(pave.downGrowth)}` : 'not measured',
    met: Number.isFinite(growth) ? growth <= 32 * MB : undefined
  }]
  // Issue 15's form of the same target: relative to the floor, which pays Node's own read buffers too.
  const floor = summary.floor
  for (const [direction, pick] of [['upload', (x: Summary): number => x.upGrowth], ['download', (x: Summary): number => x.downGrowth]] as const) {
    const ours = pave !== undefined ? pick(pave) : Number.NaN
    const theirs = floor !== undefined ? pick(floor) : Number.NaN
    targets.push({
      target: `pave-proxy RSS growth during a ${size} ${direction} ≤ the floor's`,
      measured: Number.isFinite(ours) && Number.isFinite(theirs) ? `+${fmtMB(ours)} vs +${fmtMB(theirs)}` : 'not measured',
      met: Number.isFinite(ours) && Number.isFinite(theirs) ? ours <= theirs : undefined
    })
  }
  for (const [name, entry] of results) for (const failure of entry.failures) notes.push(`${name} ${failure}`)
  return { table, targets, data: { bytes, summary, runs: Object.fromEntries(results) }, notes }
}

interface CallSeries {
  readonly label: string
  readonly calls: number
  readonly totalMs: number
  readonly medianMs: number
  readonly p90Ms: number
}

function series (label: string, durations: number[], totalMs: number): CallSeries {
  const sorted = [...durations].sort((a, b) => a - b)
  return { label, calls: durations.length, totalMs, medianMs: median(durations), p90Ms: sorted[Math.ceil(sorted.length * 0.9) - 1] ?? Number.NaN }
}

/**
 * Several kinds of call, `calls` times each, interleaved (A B C D A B C D …) so that
 * every kind sees the same machine; each call is timed on its own. Fails on the
 * first non-200.
 */
async function timeInterleaved (calls: number, kinds: ReadonlyArray<{ label: string, one: () => Promise<number> }>): Promise<CallSeries[]> {
  const durations = kinds.map(() => [] as number[])
  for (let i = 0; i < calls; i++) {
    for (const [k, { label, one }] of kinds.entries()) {
      const started = performance.now()
      const status = await one().catch((error: Error) => { throw new Error(`${label}: call ${i + 1}: ${error.message}`) })
      if (status !== 200) throw new Error(`${label}: call ${i + 1} answered ${status}`)
      durations[k]?.push(performance.now() - started)
    }
  }
  return kinds.map(({ label }, k) => {
    const list = durations[k] ?? []
    return series(label, list, list.reduce((a, b) => a + b, 0))
  })
}

function httpsCall (port: number, ca: Buffer, agent: HttpsAgent | false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: BENCH_PATH, agent, ca, headers: { accept: 'application/json', ...signNow() } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Connections the TLS upstream had accepted before this call's own. */
function tlsConnections (port: number, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: STATS_PATH, agent: false, ca }, (res) => {
      readAll(res).then((body) => resolve((JSON.parse(body) as { connections: number }).connections - 1), reject)
    })
    req.on('error', reject)
    req.end()
  })
}

function plainCall (origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(origin + BENCH_PATH, { agent: false, headers: { accept: 'application/json' } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

async function sidecarGain (): Promise<{ table: string, targets: Target[], data: unknown, notes: string[] }> {
  const calls = knobs.sidecarCalls
  const delay = knobs.relayDelayMs
  const skip = (why: string): { table: string, targets: Target[], data: unknown, notes: string[] } => ({
    table: `(skipped: ${why})`,
    targets: [{ target: 'sidecar gain ≥ 2×', measured: `not measured: ${why}`, met: undefined }],
    data: { skipped: why },
    notes: [`sidecar gain skipped: ${why}`]
  })
  if (which('openssl') === undefined) return skip('the openssl command is not installed (it makes the throw-away certificates)')
  const missing = paveProxyMissing()
  if (missing !== undefined) return skip(`pave-proxy: ${missing}`)

  const certs = makeCertificates(join(tmp, 'tls'))
  const ca = readFileSync(certs.caFile)
  const tlsUpstream = await startNodeUpstream(cores.upstream, { tls: { cert: certs.certFile, key: certs.keyFile }, requireSignature: true })
  const tlsPort = Number(new URL(tlsUpstream.origin).port)
  // The link: 20 ms each way, a new connection paying the TCP handshake's round trip too.
  const link = await startRelay(tlsPort, delay, true, cores.upstream)
  // The same link without that round trip, to show how much of the gain is TCP's.
  const dataOnly = await startRelay(tlsPort, delay, false, cores.upstream)
  const linkPort = Number(new URL(link.origin).port)
  const dataOnlyPort = Number(new URL(dataOnly.origin).port)
  const notes: string[] = []
  let pave: Running | undefined
  try {
    try {
      pave = await startPaveProxy({
        upstream: `https://127.0.0.1:${linkPort}`,
        cores: cores.proxy,
        logFile: join(tmp, 'pave-proxy-sidecar.log'),
        env: { PAVE_UPSTREAM_CA_FILE: certs.caFile },
        overrides: knobs.paveProxyEnv
      })
    } catch (error) {
      const log = (() => { try { return readFileSync(join(tmp, 'pave-proxy-sidecar.log'), 'utf8').trim().split('\n').slice(-3).join('\n') } catch { return '' } })()
      return skip(`pave-proxy did not serve through the TLS upstream with PAVE_UPSTREAM_CA_FILE (is it supported?): ${(error as Error).message} ${log}`)
    }
    const paveOrigin = pave.origin
    // Warm: the pooled TLS connection is open before timing.
    for (let i = 0; i < 3; i++) await plainCall(paveOrigin)
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca })
    await httpsCall(linkPort, ca, keepAlive)
    const connectionsBefore = await tlsConnections(tlsPort, ca)
    const [fresh, sidecar, pooledApp, freshDataOnly] = await timeInterleaved(calls, [
      { label: 'app → PAVE, new HTTPS connection per call', one: () => httpsCall(linkPort, ca, false) },
      { label: 'app → pave-proxy (plain HTTP, new loopback connection per call) → warm pooled TLS', one: () => plainCall(paveOrigin) },
      { label: 'app → PAVE, its own warm keep-alive HTTPS connection (reference)', one: () => httpsCall(linkPort, ca, keepAlive) },
      { label: 'app → PAVE, new HTTPS connection per call, TCP handshake not delayed (reference)', one: () => httpsCall(dataOnlyPort, ca, false) }
    ]) as [CallSeries, CallSeries, CallSeries, CallSeries]
    // Every fresh call opened one, and so did the first count; what is left is pave-proxy's
    // (and the keep-alive app's, had it lost its connection).
    const sidecarConnections = await tlsConnections(tlsPort, ca) - connectionsBefore - 1 - 2 * calls
    keepAlive.destroy()
    notes.push(`calls interleaved (fresh, sidecar, keep-alive app, fresh without handshake RTT, …); pave-proxy and the keep-alive app opened ${sidecarConnections} new TLS connection(s) between them during the timed calls`)
    const gain = fresh.totalMs / sidecar.totalMs
    const rows = [fresh, sidecar, pooledApp, freshDataOnly].map((s) => [
      s.label, String(s.calls), fmtFixed(s.totalMs, 0, ' ms'), fmtFixed(s.medianMs, 1, ' ms'), fmtFixed(s.p90Ms, 1, ' ms'), fmtRatio(s.totalMs / sidecar.totalMs)
    ])
    const table = renderTable(['calls', 'n', 'total', 'median', 'p90', '÷ sidecar'], rows, [false, true, true, true, true, true])
    notes.push(`TLS ${delay} ms each way through bench/relay.ts; the app verifies the throw-away CA (no verification turned off), pave-proxy gets it through PAVE_UPSTREAM_CA_FILE`)
    const targets: Target[] = [{
      target: 'sidecar gain ≥ 2× (fresh HTTPS per call ÷ pave-proxy with a warm pool)',
      measured: `${fmtRatio(gain)} (${fmtFixed(fresh.totalMs, 0, ' ms')} vs ${fmtFixed(sidecar.totalMs, 0, ' ms')} for ${calls} calls; ${fmtRatio(freshDataOnly.totalMs / sidecar.totalMs)} without the TCP handshake's round trip)`,
      met: gain >= 2
    }]
    return { table, targets, data: { delayMs: delay, calls, gain, sidecarConnections, fresh, sidecar, pooledApp, freshDataOnly }, notes }
  } finally {
    await pave?.stop().catch(() => {})
    await Promise.all([link.stop(), dataOnly.stop(), tlsUpstream.stop()])
  }
}

async function main (): Promise<void> {
  const began = performance.now()
  progress(`cores: ${cores.description}`)
  const stream = await streaming()
  const sidecar = await sidecarGain()
  await stopAll()
  const lines = [
    '',
    `pave-proxy streaming bench — ${new Date().toISOString()}`,
    `pave-proxy ${ctx.revision}; node ${ctx.machine.node}, ${ctx.machine.cpu}, ${ctx.machine.cores} cores; ${cores.description}`,
    loadNote(ctx),
    ...(Object.keys(knobs.paveProxyEnv).length > 0 ? [`NOT THE DEFAULTS: pave-proxy ran with BENCH_PAVE_PROXY_ENV ${Object.entries(knobs.paveProxyEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
    `upstream: Node (bench/upstream.ts); medians of ${knobs.streamRuns} transfers per direction; RSS growth = peak during the transfer − RSS just before it; MB = 10^6 bytes`,
    '',
    stream.table,
    '',
    `Sidecar gain: ${knobs.sidecarCalls} sequential calls over a link of ${knobs.relayDelayMs} ms each way`,
    '',
    sidecar.table,
    '',
    ...[...stream.notes, ...sidecar.notes].map((n) => `- ${n}`),
    '',
    'Targets (issues 7 and 15):',
    '',
    renderTargets([...stream.targets, ...sidecar.targets]),
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')
  const report = {
    kind: 'pave-proxy streaming bench',
    generatedAt: new Date().toISOString(),
    elapsedSeconds: Math.round((performance.now() - began) / 1000),
    revision: ctx.revision,
    machine: ctx.machine,
    load: loadNote(ctx),
    cores: cores.description,
    knobs,
    streaming: stream.data,
    sidecar: sidecar.data,
    targets: [...stream.targets, ...sidecar.targets],
    notes: [...stream.notes, ...sidecar.notes],
    tables: { streaming: stream.table, sidecar: sidecar.table }
  }
  progress(`wrote ${writeResult('stream-latest.json', report)} (${report.elapsedSeconds} s)`)
}

main().catch(async (error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`)
  await stopAll()
  process.exit(1)
})
