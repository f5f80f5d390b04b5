import t from 'tap'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MISSING_PACKAGE, findPrometheus } from './prometheus.js'

t.test('without prometheus and promtool, and no right to install them, one line names the package', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'pave-proxy-no-prometheus-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const said: string[] = []
  t.throws(() => findPrometheus({ path: empty, mayInstall: false, say: (line) => said.push(line) }), { message: MISSING_PACKAGE })
  t.match(MISSING_PACKAGE, /^[^\n]*apt-get install prometheus$/, 'one line, naming Debian\'s package')
  t.same(said, [], 'nothing installed, nothing said')
})

t.test('both binaries are found on the search path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-prometheus-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const name of ['prometheus', 'promtool']) {
    writeFileSync(join(dir, name), '#!/bin/sh\n')
    chmodSync(join(dir, name), 0o755)
  }
  t.same(findPrometheus({ path: dir, mayInstall: false }), { prometheus: join(dir, 'prometheus'), promtool: join(dir, 'promtool') })
  rmSync(join(dir, 'promtool'))
  t.throws(() => findPrometheus({ path: dir, mayInstall: false }), { message: MISSING_PACKAGE }, 'one of the two is not enough')
})

t.test('as root on Debian, the package is installed with apt-get, saying so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pave-proxy-apt-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // A stand-in apt-get that records its arguments and "installs" the two binaries beside itself.
  writeFileSync(join(dir, 'apt-get'), `#!/bin/sh\necho "$@" >> "${dir}/apt.log"\n[ "$1" = install ] || exit 0\nfor b in prometheus promtool; do printf '#!/bin/sh\\n' > "${dir}/$b"; chmod 755 "${dir}/$b"; done\n`)
  chmodSync(join(dir, 'apt-get'), 0o755)
  const said: string[] = []
  t.same(findPrometheus({ path: dir, mayInstall: true, say: (line) => said.push(line) }), { prometheus: join(dir, 'prometheus'), promtool: join(dir, 'promtool') })
  t.match(said.join('\n'), /installing Debian's prometheus package \(apt-get install -y prometheus\)/)
  t.equal(readFileSync(join(dir, 'apt.log'), 'utf8'), 'install -y --no-install-recommends prometheus\n')
})
