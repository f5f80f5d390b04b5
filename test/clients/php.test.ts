/** Client matrix: PHP's curl extension, one handle (a kept-alive connection), libcurl's own Expect. */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { ALL_OPS, checkResults, parseResults, startMatrix, type ClientResult } from './lib/matrix.js'
import { PROGRAMS, run, which } from './lib/run.js'

const php = which('php')
const curlExtension = php !== undefined && spawnSync(php, ['-r', 'exit(function_exists("curl_init") ? 0 : 1);']).status === 0
const skip = php === undefined ? 'php is not installed (Debian packages php-cli, php-curl)' : !curlExtension ? 'php has no curl extension (Debian package php-curl)' : false

t.test('php-curl', { skip }, async (t) => {
  const matrix = await startMatrix()
  t.teardown(matrix.close)
  const ran = await run(php!, [`${PROGRAMS}client.php`, matrix.proxy.url, ALL_OPS.join(',')])
  t.equal(ran.code, 0, `php ran (${ran.ms} ms)`, { stderr: ran.stderr })
  const results = parseResults(t, ran.stdout) as Array<ClientResult & { sentExpect?: boolean }>
  await checkResults(t, matrix, 'php-curl', ALL_OPS, results, {
    extra: (t, op, record, result) => {
      if (op === 'expect') t.equal((result as { sentExpect?: boolean }).sentExpect, true, 'libcurl asked Expect: 100-continue by itself')
      if (op === 'upload') t.equal(record.request.headers['transfer-encoding'], 'chunked', 'the upload streamed on chunked')
    }
  })
})
