/**
 * nginx for the bench, when it is installed: as the fast upstream (a fixed JSON
 * body), and as a contender (a signing proxy whose HMAC njs computes). Always
 * started from a generated configuration in a temporary directory, with its own
 * pid, log and temp paths, in the foreground: the system nginx is never touched.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startChild, which, type Child } from './proc.js'
import { BENCH_CREDENTIALS } from './signing.js'
import { SESSION_BODY, VERIFY_PATH } from './fixture.js'

export interface NginxInstall {
  readonly binary: string
  readonly version: string
  /** Path of ngx_http_js_module.so, when njs is installed. */
  readonly njsModule: string | undefined
  /** Whether `-e <error log>` is understood (nginx ≥ 1.19.5). */
  readonly errorLogFlag: boolean
}

/** What nginx this machine has, or why there is none to use. */
export function findNginx (): NginxInstall | string {
  const binary = which('nginx')
  if (binary === undefined) return 'nginx is not installed'
  const probe = spawnSync(binary, ['-V'], { encoding: 'utf8' })
  const text = `${probe.stdout ?? ''}${probe.stderr ?? ''}`
  const version = /nginx\/(\d+\.\d+\.\d+)/.exec(text)?.[1]
  if (version === undefined) return `${binary} -V did not name a version`
  const [major, minor, patch] = version.split('.').map(Number) as [number, number, number]
  const errorLogFlag = major > 1 || minor > 19 || (minor === 19 && patch >= 5)
  const modulesPath = /--modules-path=(\S+)/.exec(text)?.[1]
  const candidates = [modulesPath, '/usr/lib/nginx/modules', '/usr/lib64/nginx/modules', '/usr/local/nginx/modules', '/etc/nginx/modules']
    .filter((dir): dir is string => dir !== undefined)
    .map((dir) => join(dir, 'ngx_http_js_module.so'))
  const njsModule = candidates.find((path) => existsSync(path))
  return { binary, version, njsModule, errorLogFlag }
}

function preamble (dir: string, extra = ''): string {
  return `${extra}
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; multi_accept on; }
`
}

function httpCommon (dir: string): string {
  return `
  access_log off;
  server_tokens off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
`
}

/** The upstream: the fixed JSON body; /bench/verify goes on to the Node upstream, which checks signatures. */
export function upstreamConfig (dir: string, port: number, verifierPort: number): string {
  if (/['$\\]/.test(SESSION_BODY)) throw new Error('the fixed body cannot be quoted for nginx')
  return `${preamble(dir)}
http {${httpCommon(dir)}
  upstream verifier { server 127.0.0.1:${verifierPort}; keepalive 4; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location ${VERIFY_PATH} {
      proxy_pass http://verifier;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location / {
      default_type application/json;
      return 200 '${SESSION_BODY}';
    }
  }
}
`
}

/**
 * njs keeps no state between requests (each runs in a fresh VM clone), so the
 * pair is computed once per request, shared by the two variables of that request.
 */
export function njsScript (): string {
  const { username, apiKey, secret } = BENCH_CREDENTIALS
  return `import crypto from 'crypto';
var USERNAME = ${JSON.stringify(username)};
var API_KEY = ${JSON.stringify(apiKey)};
var SECRET = ${JSON.stringify(secret)};
var pair = null;
function mint() {
  var timestamp = new Date().toISOString().slice(0, 19) + 'Z';
  var token = crypto.createHmac('sha256', SECRET).update(USERNAME + ':' + API_KEY + '@' + timestamp).digest('hex');
  pair = [timestamp, token];
  return pair;
}
function timestamp(r) { return (pair || mint())[0]; }
function token(r) { return (pair || mint())[1]; }
export default { timestamp: timestamp, token: token };
`
}

/** The nginx contender: proxy to the upstream over a keep-alive pool, the three headers set by njs. */
export function proxyConfig (dir: string, port: number, upstreamPort: number, njsModule: string): string {
  return `${preamble(dir, `load_module ${njsModule};`)}
http {${httpCommon(dir)}
  js_path "${dir}";
  js_import sign from pave-sign.js;
  js_set $pave_timestamp sign.timestamp;
  js_set $pave_token sign.token;
  upstream pave {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://pave;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header API-Key "${BENCH_CREDENTIALS.apiKey}";
      proxy_set_header API-Timestamp $pave_timestamp;
      proxy_set_header API-Token $pave_token;
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`
}

/** Starts nginx in the foreground with `config` written into `dir` (created, readable by the workers). */
export function startNginx (name: string, install: NginxInstall, dir: string, config: string, cores: string | undefined, files: Record<string, string> = {}): Child {
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o755)
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text)
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, config)
  const args = ['-p', `${dir}/`, '-c', conf, ...(install.errorLogFlag ? ['-e', join(dir, 'error.log')] : [])]
  return startChild(name, install.binary, args, { cores })
}

/** The last lines of an nginx error log, for messages. */
export function errorLogTail (dir: string): string {
  try {
    return readFileSync(join(dir, 'error.log'), 'utf8').trim().split('\n').slice(-5).join('\n')
  } catch {
    return ''
  }
}
