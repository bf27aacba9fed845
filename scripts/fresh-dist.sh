#!/usr/bin/env bash
# Rebuild dist/ when it exists but is older than src/: bin/celeriac.js runs dist/ whenever it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d dist ] && { [ ! -e dist/.built ] || [ -n "$(find src -newer dist/.built -print -quit)" ]; }; then
  echo "dist/ is older than src/: npm run build" >&2
  npm run build >&2
fi
