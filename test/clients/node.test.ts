/** Client matrix: Node's built-in `fetch`, axios, and `node:http` with the `continue` event. */
import t from 'tap'
import { ALL_OPS, checkResults, parseResults, startMatrix } from './lib/matrix.js'
import { PROGRAMS, run } from './lib/run.js'

const CLIENTS = [['fetch', 'node-fetch'], ['axios', 'axios'], ['http', 'node-http']] as const

t.test('node', async (t) => {
  const matrix = await startMatrix()
  t.teardown(matrix.close)
  for (const [client, name] of CLIENTS) {
    const ran = await run(process.execPath, ['--import', 'tsx', `${PROGRAMS}node-client.ts`, client, matrix.proxy.url, ALL_OPS.join(',')])
    t.equal(ran.code, 0, `${name} ran (${ran.ms} ms)`, { stderr: ran.stderr })
    const results = parseResults(t, ran.stdout)
    await checkResults(t, matrix, name, ALL_OPS, results, {
      extra: (t, op, record) => {
        // fetch and axios ask for compressed answers by default and decode them.
        if (client !== 'http' && (op === 'get' || op === 'download')) t.equal(record.encoding, 'gzip', 'the upstream compressed it; the client decoded it')
        if (op === 'upload') t.equal(record.request.headers['transfer-encoding'], 'chunked', 'the upload streamed on chunked')
      }
    })
  }
})
