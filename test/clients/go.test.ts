/**
 * Client matrix: Go's `net/http` (default transport: keep-alive, transparent gzip,
 * `Expect: 100-continue` honoured). `go run` on one standard-library file, with its
 * build cache in the temporary directory and module downloads switched off.
 */
import t from 'tap'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ALL_OPS, checkResults, parseResults, startMatrix } from './lib/matrix.js'
import { PROGRAMS, run, which } from './lib/run.js'

const go = which('go')

t.test('go-net-http', { skip: go === undefined ? 'go is not installed (Debian package golang-go)' : false }, async (t) => {
  const matrix = await startMatrix()
  t.teardown(matrix.close)
  // A cache kept between runs makes the second `go run` fast; it holds only build output.
  const cache = join(tmpdir(), 'pave-proxy-clients-go')
  const ran = await run(go!, ['run', `${PROGRAMS}client.go`, matrix.proxy.url, ALL_OPS.join(',')], {
    env: { GOCACHE: join(cache, 'build'), GOPATH: join(cache, 'path'), GO111MODULE: 'off', GOPROXY: 'off', GOFLAGS: '', GOTOOLCHAIN: 'local' },
    timeoutMs: 120_000
  })
  t.equal(ran.code, 0, `go ran (${ran.ms} ms)`, { stderr: ran.stderr })
  await checkResults(t, matrix, 'go-net-http', ALL_OPS, parseResults(t, ran.stdout), {
    extra: (t, op, record) => {
      if (op === 'get' || op === 'download') t.equal(record.encoding, 'gzip', 'the upstream compressed it; Go decoded it')
      if (op === 'upload') t.equal(record.request.headers['transfer-encoding'], 'chunked', 'the upload streamed on chunked')
    }
  })
})
