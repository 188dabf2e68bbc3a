#!/usr/bin/env bash
# The whole test suite: lint, type check, policy checks and tests, bundle freshness, vitest.
# Integration tests need Postgres and Redis, chosen once per run (test/support/services.ts):
# TEST_DATABASE_URL / TEST_REDIS_URL when set; else containers started with testcontainers when a
# container engine (Docker) answers; else the local services, postgres://postgres@127.0.0.1:5432/postgres
# and redis://127.0.0.1:6379. The tests fail, never skip, when the services they get are down.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export VERDICT_TOOLS_OPA=1
source scripts/tools.sh
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "test: installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
step() { printf '\n== %s\n' "$*"; }
step "lint (biome)";               npx biome check .
step "type check (tsc --noEmit)";  npx tsc --noEmit
step "opa check";                  opa check --strict policies/
step "opa test";                   opa test policies/ --explain=fails
step "policy bundle is current";   node scripts/build-policies.ts --check
step "vitest"
report="$(mktemp -t verdict-vitest-XXXXXX.json)"
trap 'rm -f "$report"' EXIT
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
# One plain closing line for CI readers that do not know vitest's summary format.
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  if (r.numTotalTests === 0) { console.error("vitest ran no tests"); process.exit(1); }
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' "$report"
