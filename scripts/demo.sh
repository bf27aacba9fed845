#!/usr/bin/env bash
# The demo: installs the npm dependencies if missing, then runs examples/demo.ts (no server needed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ ! -e node_modules/.package-lock.json ]; then
  echo "Installing npm dependencies (npm ci)…" >&2
  npm ci --no-audit --no-fund >&2
fi
bash scripts/fresh-dist.sh
exec node --import tsx examples/demo.ts
