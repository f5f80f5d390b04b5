/**
 * Loaded with `--import` into a real pave-proxy process to make it fail the way
 * a bug would: once it is serving, an error is thrown (or a promise rejected)
 * that carries the whole environment and the secret as properties, to prove that
 * the crash path prints neither. PAVE_TEST_CRASH: `throw` or `reject`;
 * PAVE_TEST_CRASH_AFTER_MS: when.
 */
const mode = process.env.PAVE_TEST_CRASH
const after = Number(process.env.PAVE_TEST_CRASH_AFTER_MS ?? 1_000)

function failure (): Error {
  const error = new Error('injected failure for the crash-path test')
  return Object.assign(error, { config: { ...process.env }, apiSecret: process.env.PAVE_API_SECRET, cause: { env: { ...process.env } } })
}

if (mode === 'throw') setTimeout(() => { throw failure() }, after)
if (mode === 'reject') setTimeout(() => { void Promise.reject(failure()) }, after)
