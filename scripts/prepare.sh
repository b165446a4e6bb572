#!/usr/bin/env bash
# Shared set-up for the demo, the tests and the benchmark: system packages, Node modules,
# the compiled code and the test bed. Every part is idempotent and quick when done before.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "Ferry's test bed needs root (network namespaces, podman, CRIU)" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Ferry needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[prepare] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "[prepare] building" >&2
npm run --silent build
bash scripts/bed.sh up
# Real service images (Redis from Debian packages), the same image ID on every bed host.
bash scripts/images.sh
