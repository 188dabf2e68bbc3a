#!/usr/bin/env bash
# Source this file: it puts Node >= 22 (and, with VERDICT_TOOLS_OPA=1, the pinned OPA CLI) on PATH, installing them into
# .tools/ when the machine lacks them. Node comes from the npm registry's `node` package (the
# machines here ship Node 20); OPA is built with `go install` at the pinned version.
#   source scripts/tools.sh
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

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt 22 ]; then
  node_bin="$VERDICT_TOOLS/node-$NODE_VERSION/node_modules/node/bin/node"
  if [ ! -x "$node_bin" ]; then
    echo "tools: installing Node $NODE_VERSION from the npm registry into $VERDICT_TOOLS" >&2
    npm install --silent --no-save --no-audit --no-fund --prefix "$VERDICT_TOOLS/node-$NODE_VERSION" "node@$NODE_VERSION" >&2
  fi
  [ -x "$node_bin" ] || { echo "tools: Node $NODE_VERSION install failed" >&2; return 1 2>/dev/null || exit 1; }
  ln -sf "$node_bin" "$VERDICT_TOOLS/bin/node"
  hash -r
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
fi
eval "$_verdict_saved_opts"
