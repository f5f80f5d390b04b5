/**
 * `jose` (JWT and JWKS), loaded the first time a configuration has a JWT caller:
 * a sidecar without one never holds its modules (about 4 MB of a process's memory).
 * Everything that needs it is asynchronous already: a signature check, a key look-up.
 */
type Jose = typeof import('jose')

let loading: Promise<Jose> | undefined

export function loadJose (): Promise<Jose> {
  return (loading ??= import('jose'))
}

/**
 * The claims of a compact JWS, unverified: only to choose which caller's keys and claims a
 * token is checked against (the check itself is jose's). `undefined` when it is not one.
 */
export function unverifiedClaims (token: string): { iss?: unknown, sub?: unknown } | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'))
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? claims as { iss?: unknown, sub?: unknown } : undefined
  } catch {
    return undefined
  }
}
