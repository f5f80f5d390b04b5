# pave-proxy container image.
#
#   docker build -t pave-proxy .
#   docker run --rm --read-only -p 127.0.0.1:8080:8080 \
#     -e PAVE_USERNAME=demo-user -e PAVE_API_KEY=demo-key-not-real \
#     -e PAVE_API_SECRET_FILE=/run/secrets/pave_api_secret \
#     -v "$PWD/pave-api-secret.txt:/run/secrets/pave_api_secret:ro" pave-proxy
#
# Both base images are build arguments, so they can be pinned by digest or swapped
# (scripts/container-smoke.sh builds this file against local bases):
#
#   BUILD_IMAGE    any Node.js >= 20.19 image with npm and a shell (the full Debian image by default)
#   RUNTIME_IMAGE  any image with `node` on the PATH below; no shell, no npm needed (the
#                  process runs as uid 65532, which needs no /etc/passwd entry)
#
# The runtime is distroless rather than alpine: no shell, no package manager and no
# busybox in the final image (nothing for an intruder to run, far fewer packages to
# patch), the same glibc/Debian userland the build stage compiled against (Node.js on
# musl is an experimental platform upstream), and a ready-made non-root user 65532.
# The cost is no shell for debugging: use `kubectl debug` or the `:debug-nonroot` tag.
ARG BUILD_IMAGE=node:24-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# ---- build: dev dependencies, tsc, then only the production dependencies are kept
FROM ${BUILD_IMAGE} AS build
WORKDIR /build
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied below; no
# dependency needs an install script at run time. The cache mount needs BuildKit
# (Docker's default builder since 23.0; podman/buildah support it too).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# ---- runtime: node, dist/ and the production node_modules, owned by root, read-only to the process
FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /build/package.json ./package.json
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
# /nodejs/bin is where distroless keeps node; other bases have it in /usr/local/bin.
ENV PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin \
    HOST=0.0.0.0 \
    PORT=8080
# Inside a container the network namespace is the perimeter: listen on every
# interface of it (HOST above); publish the port on the host's loopback only
# (`-p 127.0.0.1:8080:8080`) unless other hosts must reach it.
USER 65532:65532
EXPOSE 8080
# The proxy drains on SIGTERM: /readyz turns 503 for PAVE_PROXY_SHUTDOWN_DELAY_MS (5 s),
# then in-flight requests get up to PAVE_PROXY_SHUTDOWN_TIMEOUT_MS (30 s): stop with
# `docker stop -t 40`. node runs as PID 1 and handles SIGTERM/SIGINT itself; no init needed.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "/app/dist/healthcheck.js"]
# The young generation capped at 8 MiB per semi-space: Node 24 sizes it from the host's
# memory, and under 50 connections pave-proxy then reached 244 MB RSS (the sidecar's
# Kubernetes limit is 160Mi); with the cap, 142 MB for about 1-2 us more CPU per request
# (docs/PERFORMANCE.md).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/main.js"]
