/** Client matrix: Python's `http.client`, one kept-alive connection, chunked upload. */
import t from 'tap'
import { ALL_OPS, checkResults, parseResults, startMatrix } from './lib/matrix.js'
import { PROGRAMS, run, which } from './lib/run.js'

const python = which('python3')

t.test('python-http.client', { skip: python === undefined ? 'python3 is not installed (Debian package python3)' : false }, async (t) => {
  const matrix = await startMatrix()
  t.teardown(matrix.close)
  const ran = await run(python!, [`${PROGRAMS}client.py`, matrix.proxy.url, ALL_OPS.join(',')])
  t.equal(ran.code, 0, `python3 ran (${ran.ms} ms)`, { stderr: ran.stderr })
  await checkResults(t, matrix, 'python-http.client', ALL_OPS, parseResults(t, ran.stdout), {
    extra: (t, op, record) => {
      if (op === 'upload') t.equal(record.request.headers['transfer-encoding'], 'chunked', 'the upload streamed on chunked')
    }
  })
})
