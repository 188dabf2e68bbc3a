#!/usr/bin/env bash
# Source this file: it puts a Node that runs .ts files without a flag (and, with VERDICT_TOOLS_OPA=1,
# the pinned OPA CLI) on PATH, installing them into .tools/ when the machine lacks them; with
# VERDICT_TOOLS_OPA=1 it also builds OPA's Go builtins to wasm into .tools/go-builtins/. When the
# system Node is older than the floor (22.18.0 on the 22 line, 23.6.0 on the 23 line: where type
# stripping became unflagged; package.json `engines` says the same), the Node pinned in
# .node-version comes from the npm registry's `node` package (the machines here ship Node 20); OPA is built with
# `go install` at the pinned version.
#   source scripts/tools.sh
# VERDICT_TOOLS_DRY_RUN=1 only says what it would install (test/deploy/node-bootstrap.test.ts).
# NOTE: restore the caller's shell options at the end. `set +o` runs in a command substitution,
# where bash drops errexit, so errexit is read from $- instead.
_verdict_saved_opts="$(set +o)"
case $- in *e*) _verdict_saved_opts="$_verdict_saved_opts; set -e" ;; esac
set -euo pipefail
VERDICT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERDICT_TOOLS="${VERDICT_TOOLS:-$VERDICT_ROOT/.tools}"
NODE_VERSION="$(tr -d ' \n' < "$VERDICT_ROOT/.node-version")"
OPA_VERSION="$(tr -d ' \n' < "$VERDICT_ROOT/.opa-version")"
mkdir -p "$VERDICT_TOOLS/bin"
export PATH="$VERDICT_TOOLS/bin:$PATH"

# True when Node version $1 (x.y.z, optional leading v) runs .ts files with no flag: type stripping
# is on by default from 22.18.0 and 23.6.0, and in every release from 24 on.
VERDICT_NODE_FLOOR='^22.18.0 || >=23.6.0'
verdict_node_supported() {
  local major minor rest
  IFS=. read -r major minor rest <<<"${1#v}"
  [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
  case "$major" in
    22) [ "$minor" -ge 18 ] ;;
    23) [ "$minor" -ge 6 ] ;;
    *) [ "$major" -ge 24 ] ;;
  esac
}

node_current="$(node -p 'process.versions.node' 2>/dev/null || echo none)"
if ! verdict_node_supported "$node_current"; then
  node_bin="$VERDICT_TOOLS/node-$NODE_VERSION/node_modules/node/bin/node"
  if [ "${VERDICT_TOOLS_DRY_RUN:-0}" = 1 ]; then
    echo "tools: Node $node_current is not $VERDICT_NODE_FLOOR; would install Node $NODE_VERSION into $VERDICT_TOOLS" >&2
  else
    if [ ! -x "$node_bin" ]; then
      echo "tools: Node $node_current is not $VERDICT_NODE_FLOOR; installing Node $NODE_VERSION from the npm registry into $VERDICT_TOOLS" >&2
      npm install --silent --no-save --no-audit --no-fund --prefix "$VERDICT_TOOLS/node-$NODE_VERSION" "node@$NODE_VERSION" >&2
    fi
    [ -x "$node_bin" ] || { echo "tools: Node $NODE_VERSION install failed" >&2; return 1 2>/dev/null || exit 1; }
    ln -sf "$node_bin" "$VERDICT_TOOLS/bin/node"
    hash -r
  fi
fi

if [ "${VERDICT_TOOLS_OPA:-0}" = 1 ]; then
# NOTE: read opa's whole output before matching: `opa version | grep -q` lets grep exit early, opa
# dies of SIGPIPE, and under pipefail the check fails at random.
opa_ok() {
  local out
  command -v opa >/dev/null 2>&1 && out="$(opa version 2>/dev/null)" && [[ "$out" == *"Version: ${OPA_VERSION#v}"* ]]
}
if ! opa_ok; then
  echo "tools: installing OPA $OPA_VERSION with go install into $VERDICT_TOOLS/bin" >&2
  command -v go >/dev/null 2>&1 || { echo "tools: Go is needed to build the pinned OPA CLI" >&2; return 1 2>/dev/null || exit 1; }
  GOBIN="$VERDICT_TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/open-policy-agent/opa@$OPA_VERSION" >&2
  hash -r
  opa_ok || { echo "tools: OPA $OPA_VERSION not usable after install" >&2; return 1 2>/dev/null || exit 1; }
fi
# OPA's own Go builtins compiled to wasm (builtins-go/, ADR 0022), keyed by the OPA version and a
# digest of the Go sources, the key src/engine/go-builtins.ts computes: a changed source or OPA
# version builds anew, an unchanged one is reused.
# (Skipped in a copy of these scripts without builtins-go/, as tests make.)
if [ -f "$VERDICT_ROOT/builtins-go/main.go" ]; then
go_key="$OPA_VERSION-$( { printf '%s\n' "$OPA_VERSION"; cat "$VERDICT_ROOT/builtins-go/go.mod" \
  "$VERDICT_ROOT/builtins-go/go.sum" "$VERDICT_ROOT/builtins-go/main.go"; } | sha256sum | cut -c1-16)"
# Always in this checkout's .tools/, whatever VERDICT_TOOLS says: where the runtime looks.
go_wasm="$VERDICT_ROOT/.tools/go-builtins/$go_key/verdict-builtins.wasm"
if [ ! -f "$go_wasm" ]; then
  echo "tools: building OPA $OPA_VERSION's Go builtins for wasm into $go_wasm" >&2
  command -v go >/dev/null 2>&1 || { echo "tools: Go is needed to build OPA's Go builtins" >&2; return 1 2>/dev/null || exit 1; }
  mkdir -p "$(dirname "$go_wasm")"
  (cd "$VERDICT_ROOT/builtins-go" && GOOS=wasip1 GOARCH=wasm GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -buildmode=c-shared -trimpath -ldflags=-s -o "$go_wasm.tmp" .) >&2
  mv "$go_wasm.tmp" "$go_wasm"
fi
fi
fi
eval "$_verdict_saved_opts"
