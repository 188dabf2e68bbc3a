# syntax=docker/dockerfile:1
# Verdict container image. Three build stages, one small runtime stage:
#   opa       builds the pinned OPA CLI (.opa-version) — build time only, never in the final image —
#             and OPA's Go builtins compiled to wasm (builtins-go/), which the image does carry
#   policies  compiles policies/ into the default wasm bundle with that CLI
#   deps      installs production dependencies only (npm ci --omit=dev)
#   runtime   node:24 slim, non-root, read-only-root-filesystem friendly, HEALTHCHECK
# Build: docker build -t verdict .    Run: see deploy/docker-compose.yml and docs/operations.md.

ARG NODE_IMAGE=node:24.21.0-bookworm-slim
ARG GO_IMAGE=golang:1.25.4-bookworm

FROM ${GO_IMAGE} AS opa
WORKDIR /src
COPY .opa-version ./
RUN GOBIN=/out CGO_ENABLED=0 go install "github.com/open-policy-agent/opa@$(tr -d ' \n' < .opa-version)" \
 && /out/opa version
# OPA's own Go builtins compiled to wasm (builtins-go/, ADR 0022), for the runtime stage.
COPY builtins-go/ builtins-go/
RUN cd builtins-go && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s \
      -o /out/verdict-builtins.wasm .

FROM ${NODE_IMAGE} AS policies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY --from=opa /out/opa /usr/local/bin/opa
COPY tsconfig.json ./
COPY scripts/ scripts/
COPY src/ src/
COPY policies/ policies/
RUN node scripts/build-policies.ts

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    VERDICT_LOG_FORMAT=json \
    VERDICT_DATA_DIR=/var/lib/verdict \
    VERDICT_BUNDLE=/app/policies/bundle/bundle.tar.gz \
    VERDICT_GO_BUILTINS_WASM=/app/lib/verdict-builtins.wasm
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json ./
COPY --chown=root:root src/ ./src/
# The SDK's sources: the MCP guard and the CI gate of the `verdict` CLI import them (ADR 0011).
COPY --chown=root:root packages/sdk/src/ ./packages/sdk/src/
COPY --chown=root:root migrations/ ./migrations/
COPY --from=policies --chown=root:root /app/policies/bundle/bundle.tar.gz ./policies/bundle/bundle.tar.gz
COPY --from=opa --chown=root:root /out/verdict-builtins.wasm ./lib/verdict-builtins.wasm
# The only writable path: the embedded database, dev secret and audit spool. Mount a volume here
# (the root filesystem can then be read-only); the code itself stays root-owned and immutable.
# `verdict` on PATH: the CLI the CI pipelines of deploy/ci/ run in this image (gate, mcp-proxy, …).
RUN printf '#!/bin/sh\nexec node /app/src/cli/verdict.ts "$@"\n' > /usr/local/bin/verdict && chmod 755 /usr/local/bin/verdict
RUN mkdir -p /var/lib/verdict && chown 1000:1000 /var/lib/verdict
VOLUME ["/var/lib/verdict"]
# The "node" user of the official image, by number so that runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "src/main.ts"]
