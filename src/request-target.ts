/**
 * Which request targets the proxy accepts.
 *
 * Only origin-form targets (`/path?query`) whose path has one meaning whatever
 * decodes or normalises it downstream: no dot segments (plain or percent-encoded),
 * no encoded slash or backslash, no backslash, no `;` path parameters, no empty
 * segments, no NUL, no malformed or overlong percent-encoding. Such a path routes
 * to one account only, and reaches PAVE exactly as the caller wrote it.
 */

/** True when the target is safe to route and forward as is. */
export function isAcceptableTarget (target: string): boolean {
  if (target.charCodeAt(0) !== 47 /* / */ || target.charCodeAt(1) === 47) return false
  const queryAt = target.indexOf('?')
  const path = queryAt === -1 ? target : target.slice(0, queryAt)
  // Fast path: most PAVE paths hold none of the characters that need a closer look.
  if (!/[%\\;.]|\/\//.test(path)) return true
  if (path.includes('\\') || path.includes(';') || path.includes('//')) return false
  if (path.includes('%')) {
    if (/%(?:2f|5c|00|3b)/i.test(path)) return false
    try {
      decodeURIComponent(path) // refuses malformed and overlong UTF-8 sequences
    } catch {
      return false
    }
  }
  for (const segment of path.split('/')) {
    const plain = segment.replace(/%2e/gi, '.')
    if (plain === '.' || plain === '..') return false
  }
  return true
}
