#!/usr/bin/env bash
# Runs a command with the project's tools on PATH: a Node that runs .ts files without a flag
# (scripts/tools.sh) always; the pinned OPA CLI too when the first argument is --opa. Installs npm dependencies first when node_modules is missing or
# older than package-lock.json, so that `npm start` works on a fresh clone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--opa" ]; then export VERDICT_TOOLS_OPA=1; shift; fi
source "$root/scripts/tools.sh"
# NOTE: a node_modules that is a link belongs to another checkout (a test's scratch clone, a git
# worktree): `npm ci` would empty it through the link, so it is never installed from here.
if [ ! -L "$root/node_modules" ] && { [ ! -f "$root/node_modules/.package-lock.json" ] || [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; }; then
  echo "run: installing npm dependencies (npm ci)" >&2
  (cd "$root" && npm ci --no-audit --no-fund >&2)
fi
exec "$@"
