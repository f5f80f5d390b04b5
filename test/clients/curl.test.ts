/**
 * Client matrix: the curl command line (defaults, --http1.0, -T -, --http2 over plain
 * HTTP (an h2c Upgrade the proxy answers as HTTP/1.1), --compressed).
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { patternChunks } from '../helpers/upstream.js'
import { ALL_OPS, FAKE, MiB, SPEC, checkResults, smallBody, startMatrix, type ClientResult, type Op } from './lib/matrix.js'
import { run, which } from './lib/run.js'

const curl = which('curl')

interface Variant {
  name: string
  flags: string[]
  /** Operations this variant cannot do, with the reason (reported as skipped). */
  notApplicable?: Partial<Record<Op, string>>
  /** Upload from standard input (`-T -`) instead of a file. */
  stdin?: boolean
}

const UPLOADS_ONLY = '`-T -` uploads standard input: its operations are put, upload and expect'
const ALL_VARIANTS: Variant[] = [
  { name: 'curl', flags: [] },
  { name: 'curl-http1.0', flags: ['--http1.0'], notApplicable: { upload: 'HTTP/1.0 has no chunked transfer coding', expect: 'curl sends no Expect over HTTP/1.0' } },
  { name: 'curl-T', flags: [], stdin: true, notApplicable: Object.fromEntries(ALL_OPS.filter((op) => !['put', 'upload', 'expect'].includes(op)).map((op) => [op, UPLOADS_ONLY])) },
  { name: 'curl-http2', flags: ['--http2'] },
  { name: 'curl-compressed', flags: ['--compressed'] }
]
const VARIANTS = process.env.CURL_ONLY !== undefined ? ALL_VARIANTS.filter((v) => v.name === process.env.CURL_ONLY) : ALL_VARIANTS

async function sha256File (path: string): Promise<{ sha256: string, length: number }> {
  const hash = createHash('sha256')
  let length = 0
  for await (const chunk of createReadStream(path)) { hash.update(chunk as Buffer); length += (chunk as Buffer).length }
  return { sha256: hash.digest('hex'), length }
}

if (curl === undefined) {
  t.test('curl', { skip: 'curl is not installed (Debian package curl)' }, () => {})
} else {
  t.test('curl', async (t) => {
    const matrix = await startMatrix()
    const dir = await mkdtemp(join(tmpdir(), 'pave-proxy-curl-'))
    t.teardown(async () => { await matrix.close(); await rm(dir, { recursive: true, force: true }) })
    const files: Record<string, string> = {}
    for (const size of [2 * MiB, 5 * MiB]) {
      files[size] = join(dir, `pattern-${size}`)
      await writeFile(files[size]!, Buffer.concat([...patternChunks(size)]))
    }
    for (const op of ['post', 'put'] as const) {
      files[op] = join(dir, `${op}.json`)
      await writeFile(files[op]!, smallBody(op))
    }

    for (const variant of VARIANTS) {
      const results: ClientResult[] = []
      const versions: Partial<Record<Op, string>> = {}
      const continued: Partial<Record<Op, boolean>> = {}
      const upgrade: Partial<Record<Op, boolean>> = {}
      const ops = ALL_OPS.filter((op) => variant.notApplicable?.[op] === undefined)
      for (const op of ops) {
        const spec = SPEC[op]
        const body = join(dir, `${variant.name}-${op}.out`)
        const head = join(dir, `${variant.name}-${op}.head`)
        const args = ['-sS', '-v', '--max-time', '60', ...variant.flags, '-o', body, '-D', head, '-w', '%{http_code} %{http_version}']
        let stdin: Iterable<Buffer> | undefined
        const request = spec.request
        if (variant.stdin === true) {
          // `-T -`: the body comes from standard input, length unknown, so curl sends it
          // chunked and (for anything but a tiny body) asks `Expect: 100-continue`.
          args.push('-T', '-', '-X', spec.method, '-H', 'content-type: application/octet-stream')
          stdin = request === 'small' ? [Buffer.from(smallBody(op))] : patternChunks(request as number)
        } else if (op === 'head') {
          args.push('-I')
        } else if (request === 'small') {
          args.push('-X', spec.method, '-H', 'content-type: application/json', '--data-binary', `@${files[op]!}`)
        } else if (typeof request === 'number') {
          args.push('-X', spec.method, '-H', 'content-type: application/octet-stream', '--data-binary', `@${files[request]!}`)
          // curl asks `Expect: 100-continue` by itself for bodies over 1 MiB; only the `expect` operation keeps that.
          if (op !== 'expect') args.push('-H', 'Expect:')
          if (op === 'upload') args.push('-H', 'Transfer-Encoding: chunked')
        } else if (spec.method !== 'GET') {
          args.push('-X', spec.method)
        }
        if (op === 'creds') args.push('-H', `API-Key: ${FAKE.key}`, '-H', `API-Token: ${FAKE.token}`, '-H', `API-Timestamp: ${FAKE.timestamp}`)
        args.push(`${matrix.proxy.url}/v1/clients/${variant.name}/${op}`)
        const ran = await run(curl, args, stdin !== undefined ? { stdin } : {})
        if (ran.code !== 0) {
          results.push({ op, error: `curl exited ${String(ran.code)}: ${ran.stderr.split('\n').filter((l) => !/^[*<>{}]/.test(l)).join(' ').slice(0, 300)}` })
          continue
        }
        const [status, version] = ran.stdout.trim().split(' ')
        versions[op] = version
        continued[op] = /^< HTTP\/1\.1 100 Continue/m.test(ran.stderr)
        upgrade[op] = /^> Upgrade: h2c/m.test(ran.stderr)
        const headText = await readFile(head, 'latin1')
        const contentLength = /^content-length: *(\d+)/im.exec(headText.split(/\r\n\r\n(?=HTTP\/)/).at(-1) ?? '')?.[1]
        const received = op === 'head' ? { sha256: '', length: 0 } : await sha256File(body)
        results.push({ op, status: Number(status), ...received, ...(contentLength !== undefined ? { contentLength } : {}) })
        if (op === 'expect' || variant.stdin === true) t.match(ran.stderr, /^> Expect: 100-continue/m, `${variant.name} ${op}: curl asked Expect: 100-continue`)
      }
      await checkResults(t, matrix, variant.name, ops, results, {
        ...(variant.notApplicable !== undefined ? { notApplicable: variant.notApplicable } : {}),
        extra: (t, op, record) => {
          if (variant.name === 'curl-http2') {
            t.equal(versions[op], '1.1', 'the h2c Upgrade is answered as HTTP/1.1')
            if (op === 'get') t.ok(upgrade[op], 'curl asked Upgrade: h2c')
            t.equal(record.request.headers.upgrade, undefined, 'no Upgrade reaches the upstream')
            t.equal(record.request.headers['http2-settings'], undefined, 'no HTTP2-Settings reaches the upstream')
          }
          if (op === 'expect' || variant.stdin === true) t.ok(continued[op], 'the proxy answered 100 Continue')
          if (op === 'upload') t.equal(record.request.headers['transfer-encoding'], 'chunked', 'the upload streamed on chunked')
          if (variant.name === 'curl-compressed' && (op === 'get' || op === 'download')) t.equal(record.encoding, 'gzip', 'the upstream compressed it; curl decoded it')
        }
      })
    }
  })
}
