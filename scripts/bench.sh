#!/usr/bin/env bash
# Ferry's benchmark suite (issue #6), run by hand on the test bed: `npm run bench`
# (full, ~15 min), `npm run bench -- --quick` or FERRY_BENCH_QUICK=1 (a few minutes),
# `npm run bench -- --smoke` (under a minute, for CI), `--only=1,2` to pick items.
# Needs the bed up (scripts/bed.sh up); never takes it down. Results: test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f "${FERRY_BED_DIR:-/var/lib/ferry-bed}/bed.json" ]; then
  echo "bench: no test bed; run \`bash scripts/bed.sh up\` first" >&2
  exit 2
fi
mkdir -p test-output/bench
# The memory workload: a static binary, bind-mounted into a busybox container.
if [ ! -x test-output/bench/memhog ] || [ bench/native/memhog.c -nt test-output/bench/memhog ]; then
  gcc -O2 -static -o test-output/bench/memhog bench/native/memhog.c
fi
npx tsc -p tsconfig.json >/dev/null || echo "bench: tsc reported errors (emitted anyway); see npm run typecheck" >&2
exec node dist/bench/main.js "$@"
