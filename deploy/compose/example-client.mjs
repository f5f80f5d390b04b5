// The example client of docker-compose.yml: an app that calls PAVE through
// pave-proxy, with no credentials of its own. It creates one inspection session,
// prints the answer and exits 0 on success.
//
//   PAVE_PROXY_URL=http://127.0.0.1:8080 node deploy/compose/example-client.mjs
const base = process.env.PAVE_PROXY_URL ?? 'http://127.0.0.1:8080'

const response = await fetch(`${base}/v1/sessions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    session: { theme: 'LITE', language: 'EN' },
    vehicle: { vin: '1HGCM82633A004352' }
  }),
  signal: AbortSignal.timeout(10_000)
})
const text = await response.text()
console.log(`POST ${base}/v1/sessions → ${response.status}${response.headers.get('x-pave-proxy-error') ? ` (${response.headers.get('x-pave-proxy-error')})` : ''}`)
console.log(text)
let sessionKey
try {
  sessionKey = JSON.parse(text).session_key
} catch {}
if (response.ok && typeof sessionKey === 'string') {
  console.log(`created session ${sessionKey}`)
} else {
  process.exitCode = 1
}
