import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ENVIRONMENT_VARIABLES } from '../../src/config/load.js'
import { ROOT, configFromEnvironment, imageEnvironment, readDockerfile, stageEnvironment, type Stage } from './manifests.js'

const dockerfile = readDockerfile()
const [build, runtime] = dockerfile.stages as [Stage, Stage]
const instructions = (stage: Stage, keyword: string): string[] => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)
const execForm = (args: string): string[] => JSON.parse(args) as string[]

t.test('two stages, both bases chosen by build arguments: the full Node 24 image to build, distroless Node 24 to run', async (t) => {
  t.equal(dockerfile.stages.length, 2)
  t.equal(build.from, '${BUILD_IMAGE}')
  t.equal(build.name, 'build')
  t.equal(runtime.from, '${RUNTIME_IMAGE}')
  t.match(dockerfile.args.get('BUILD_IMAGE'), /^node:24-bookworm$/, 'the full Debian Node.js 24 image (npm, a shell, glibc)')
  t.match(dockerfile.args.get('RUNTIME_IMAGE'), /^gcr\.io\/distroless\/nodejs24-debian12:nonroot$/, 'distroless Node.js 24, non-root variant')
})

t.test('the build stage installs with the lockfile, builds, then drops the dev dependencies', async (t) => {
  const runs = instructions(build, 'RUN').join(' && ')
  t.match(runs, /npm ci\b/)
  t.match(runs, /npm run build/)
  t.match(runs, /npm prune --omit=dev/)
  t.ok(runs.indexOf('npm ci') < runs.indexOf('npm prune'), 'prune after the build')
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.match(pkg.scripts.build, /^tsc -p tsconfig\.build\.json$/, 'npm run build is the tsc build')
})

t.test('the runtime stage holds only package.json, the production node_modules and dist/, and runs nothing', async (t) => {
  t.same(instructions(runtime, 'RUN'), [], 'no RUN: nothing needs a shell in the final image')
  t.same(instructions(runtime, 'COPY'), [
    '--from=build /build/package.json ./package.json',
    '--from=build /build/node_modules ./node_modules',
    '--from=build /build/dist ./dist'
  ])
  t.same(instructions(runtime, 'WORKDIR'), ['/app'])
})

t.test('non-root, exposed port, stop signal, health check, entrypoint', async (t) => {
  const [user] = instructions(runtime, 'USER')
  t.match(user, /^[1-9]\d*:[1-9]\d*$/, 'a numeric non-root uid:gid (runAsNonRoot can verify it)')
  const config = configFromEnvironment({ ...imageEnvironment(), PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's' })
  t.equal(config.host, '0.0.0.0', 'HOST=0.0.0.0: the container boundary is the perimeter')
  t.same(instructions(runtime, 'EXPOSE'), [String(config.port)], 'EXPOSE is the port it listens on')
  t.same(instructions(runtime, 'STOPSIGNAL'), ['SIGTERM'])

  const [healthcheck = ''] = instructions(runtime, 'HEALTHCHECK')
  const [, options = '', command = '[]'] = /^(.*?)CMD (\[.*\])$/.exec(healthcheck) ?? []
  t.same(execForm(command), ['node', '/app/dist/healthcheck.js'], 'exec form: no shell, no curl')
  t.ok(existsSync(join(ROOT, 'src', 'healthcheck.ts')), 'dist/healthcheck.js is built from src/healthcheck.ts')
  const timeout = /--timeout=(\d+)s/.exec(options)?.[1]
  t.ok(Number(timeout) > 2, `the check's own 2 s limit fits in --timeout=${timeout ?? '?'}s`)

  const [entrypoint = '[]'] = instructions(runtime, 'ENTRYPOINT')
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  t.same(execForm(entrypoint), ['node', '--max-semi-space-size=8', `/app/${pkg.bin['pave-proxy'] ?? '?'}`], 'exec form, so node is PID 1 and gets SIGTERM itself; the young generation capped (Node 24 sizes it from the host)')
})

t.test('every environment name the image sets is read by pave-proxy (PATH aside)', async (t) => {
  const env = stageEnvironment(runtime)
  t.match(env.PATH, /^\/nodejs\/bin:/, 'distroless keeps node in /nodejs/bin')
  for (const name of Object.keys(imageEnvironment())) t.ok(ENVIRONMENT_VARIABLES.includes(name), `${name} is read by pave-proxy`)
  t.notOk(Object.keys(env).some((name) => /SECRET|TOKEN|KEY/.test(name) && name !== 'PAVE_API_SECRET_FILE'), 'no credential baked into the image')
})

t.test('.dockerignore lets in only what the build copies', async (t) => {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  t.equal(lines[0], '*', 'everything is excluded first')
  const allowed = lines.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''))
  t.ok(lines.slice(1).every((l) => l.startsWith('!')), 'then only exceptions')
  const copied = instructions(build, 'COPY').flatMap((args) => args.split(' ').slice(0, -1))
  t.same([...copied].sort(), [...allowed].sort(), 'the exceptions are exactly the build stage\'s COPY sources')
  for (const path of allowed) t.ok(existsSync(join(ROOT, path)), `${path} exists`)
})
