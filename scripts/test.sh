#!/usr/bin/env bash
# The whole test suite on a real bed: unit tests, then integration tests against real
# Redis, sshd, podman and CRIU in network namespaces. Brings the bed up first (installing
# what is missing) and takes it down afterwards unless FERRY_KEEP_BED=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
if [ "${FERRY_KEEP_BED:-0}" != 1 ]; then
  trap 'bash scripts/bed.sh down >/dev/null 2>&1 || echo "bed.sh down failed" >&2' EXIT
fi
# Style is part of the suite: CI fails on a lint error or an unformatted file.
echo "[test] eslint and prettier" >&2
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --list-different . >&2; echo "unformatted files above: npm run format" >&2; exit 1; }
# Workers the tests start log here; CI keeps the folder for a look after a failure.
mkdir -p test-output
# The nemesis: its fixed regressions, and a fixed-seed handful of randomized runs (the full
# suite is FERRY_NEMESIS_RUNS=500, see docs/reliability.md).
export FERRY_NEMESIS_RUNS="${FERRY_NEMESIS_RUNS:-$([ "${FERRY_TEST_EXTENDED:-0}" = 1 ] && echo 4 || echo 1)}"
npx mocha --reporter ./dist/test/support/summaryReporter.js --exit 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js' 'dist/test/nemesis/**/*.test.js' "$@"
