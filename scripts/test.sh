#!/usr/bin/env bash
# The whole test suite: unit, integration (real Redis/RabbitMQ/SQLite), interop (real Python Celery), faults.
# Works from a fresh clone: installs the npm dependencies first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ ! -e node_modules/.package-lock.json ]; then
  echo "Installing npm dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund >&2
fi
# CELERIAC_TEST_SUBSET=unit (or integration, interop, faults) runs one folder only.
mapfile -t files < <(find "test/${CELERIAC_TEST_SUBSET:-}" -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "No test files found under test/" >&2
  exit 1
fi
exec node --import tsx --test --test-concurrency="${CELERIAC_TEST_CONCURRENCY:-1}" --test-timeout="${CELERIAC_TEST_TIMEOUT:-300000}" "${files[@]}"
