/**
 * The bench's own servers (upstream, floor, http-proxy, relay) run as plain
 * `node <file>.js`, not through tsx: tsx's loader would add about 30 MB of RSS and
 * 150-200 ms of start-up to the contenders it is meant to compare against.
 * They are transpiled here, file by file (no type check: `npm run typecheck` does
 * that), into node_modules/.cache/pave-bench/, where bare imports still resolve.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BUILD_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'pave-bench')

function tsFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === 'results' ? [] : tsFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** Transpiles bench/ and the signing functions; returns the directory to run from. */
export function compileBench (): string {
  const sources = [...tsFiles(join(REPO_ROOT, 'bench')), join(REPO_ROOT, 'src', 'signing', 'pave-token.ts')]
  for (const source of sources) {
    const out = join(BUILD_DIR, relative(REPO_ROOT, source)).replace(/\.ts$/, '.js')
    const { outputText } = ts.transpileModule(readFileSync(source, 'utf8'), {
      fileName: source,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, isolatedModules: true, esModuleInterop: true }
    })
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, outputText)
  }
  // Under node_modules the project's "type": "module" does not reach: say it again.
  writeFileSync(join(BUILD_DIR, 'package.json'), '{ "type": "module", "private": true }\n')
  return BUILD_DIR
}

/** Path of the transpiled form of a bench file, e.g. `bench/floor.ts`. */
export function compiled (repoPath: string): string {
  return join(BUILD_DIR, repoPath.replace(/\.ts$/, '.js'))
}
