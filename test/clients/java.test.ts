/**
 * Client matrix: Java's `HttpURLConnection` and `java.net.http.HttpClient` (its default
 * HTTP/2 preference makes it ask an h2c Upgrade on every plain-HTTP request, which the
 * proxy answers as HTTP/1.1), both in one JVM:
 * `java Clients.java` compiles and runs the single source file.
 */
import t from 'tap'
import { ALL_OPS, checkResults, parseResults, startMatrix, type ClientResult } from './lib/matrix.js'
import { PROGRAMS, run, which } from './lib/run.js'

const java = which('java')
const CLIENTS = [['urlconnection', 'java-urlconnection'], ['httpclient', 'java-httpclient']] as const

t.test('java', { skip: java === undefined ? 'java is not installed (Debian package openjdk-17-jdk-headless)' : false }, async (t) => {
  const matrix = await startMatrix()
  t.teardown(matrix.close)
  const ran = await run(java!, [`${PROGRAMS}Clients.java`, matrix.proxy.url, CLIENTS.map(([c]) => c).join(','), ALL_OPS.join(',')], { timeoutMs: 90_000 })
  t.equal(ran.code, 0, `java ran (${ran.ms} ms)`, { stderr: ran.stderr })
  const results = parseResults(t, ran.stdout) as Array<ClientResult & { client: string }>
  for (const [, name] of CLIENTS) {
    await checkResults(t, matrix, name, ALL_OPS, results.filter((r) => r.client === name), {
      extra: (t, op, record) => {
        if (op === 'upload') t.equal(record.request.headers['transfer-encoding'], 'chunked', 'the upload streamed on chunked')
        t.equal(record.request.headers.upgrade, undefined, 'no Upgrade reaches the upstream')
        t.equal(record.request.headers['http2-settings'], undefined, 'no HTTP2-Settings reaches the upstream')
      }
    })
  }
})
