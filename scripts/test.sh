#!/usr/bin/env bash
# The whole test suite (the command CI runs). From a fresh clone it installs the npm dependencies; unless
# CELERIAC_TEST_SUBSET=unit (which needs nothing else and works offline) it also installs and starts what
# the integration, interop and fault tests need (scripts/test-setup.sh). Test files that share no state
# run at the same time (scripts/run-tests.mjs; CELERIAC_TEST_CONCURRENCY=1 runs one file at a time).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ ! -e node_modules/.package-lock.json ]; then
  echo "Installing npm dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund >&2
fi
subset="${CELERIAC_TEST_SUBSET:-}" # unit, integration, interop or faults: one folder only
if [ "$subset" != unit ]; then
  bash scripts/test-setup.sh
  bash scripts/fresh-dist.sh
fi
mapfile -t files < <(find "test/$subset" -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "No test files found under test/$subset" >&2
  exit 1
fi
exec node scripts/run-tests.mjs "${files[@]}"
