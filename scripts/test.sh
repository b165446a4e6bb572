#!/usr/bin/env bash
# The whole test suite on a real bed: unit tests, then integration tests against real
# Redis, sshd, podman and CRIU in network namespaces. Brings the bed up first (installing
# what is missing) and takes it down afterwards unless FERRY_KEEP_BED=1.
#
# The suite runs in two lanes side by side, each on four bed hosts of its own that its tests
# know as a, b, c, d (test/support/bed.ts, FERRY_TEST_HOSTS): most of a test's time is spent
# waiting on podman, CRIU and SSH, so two lanes take little more than half the time of one.
# Tests never share a host's containers or work dir; they share Redis under their own prefixes.
# FERRY_TEST_LANES=1 runs one lane (as does a bed of fewer than eight hosts); arguments run
# just those test files, in one lane.
set -euo pipefail
cd "$(dirname "$0")/.."
export FERRY_BED_HOSTS="${FERRY_BED_HOSTS:-a b c d e f g h}"
bash scripts/prepare.sh
if [ "${FERRY_KEEP_BED:-0}" != 1 ]; then
  trap 'mkdir -p test-output; bash scripts/bed.sh down >test-output/bed-down.log 2>&1 || echo "bed.sh down failed: see test-output/bed-down.log" >&2' EXIT
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
REPORTER=./dist/test/support/summaryReporter.js

read -r -a BED_HOSTS <<< "$FERRY_BED_HOSTS"
[ ${#BED_HOSTS[@]} -ge 4 ] || { echo "the tests need a bed of at least four hosts (FERRY_BED_HOSTS=\"$FERRY_BED_HOSTS\")" >&2; exit 1; }
lane_hosts() { echo "a=${BED_HOSTS[$1]} b=${BED_HOSTS[$1 + 1]} c=${BED_HOSTS[$1 + 2]} d=${BED_HOSTS[$1 + 3]}"; }
LANES=${FERRY_TEST_LANES:-2}
[ ${#BED_HOSTS[@]} -ge 8 ] || LANES=1

if [ $# -gt 0 ] || [ "$LANES" = 1 ]; then
  files=("$@")
  [ ${#files[@]} -gt 0 ] || files=('dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js' 'dist/test/nemesis/**/*.test.js')
  FERRY_TEST_HOSTS=$(lane_hosts 0) npx mocha --reporter "$REPORTER" --exit "${files[@]}"
  exit 0
fi

# Lane 2: chosen by measured time so the lanes end together (docs/testbed.md, "The suite's
# lanes"); every other file runs in lane 1. The Redis Sentinel, Cluster and TLS tests (each picks a
# free port, then starts a server on it), the dashboard's and the metrics' stay together in lane 1.
LANE2=(
  integration/postcopyMigrate integration/fleet integration/volumes integration/database
  integration/rollback integration/hooks integration/services integration/connections
  integration/encryption integration/migrate integration/postcopy nemesis/nemesis nemesis/regressions
  integration/overdueRestore integration/fuzz
)
lane2=()
for f in "${LANE2[@]}"; do
  [ -f "dist/test/$f.test.js" ] || { echo "scripts/test.sh: lane 2 names dist/test/$f.test.js, which does not exist" >&2; exit 1; }
  lane2+=("dist/test/$f.test.js")
done
lane1=(dist/test/unit/*.test.js)
for f in dist/test/integration/*.test.js dist/test/nemesis/*.test.js; do
  case " ${lane2[*]} " in *" $f "*) ;; *) lane1+=("$f") ;; esac
done

t0=$SECONDS
rm -f test-output/lane-1.stats test-output/lane-2.stats
FERRY_TEST_HOSTS=$(lane_hosts 4) FERRY_TEST_STATS=test-output/lane-2.stats \
  npx mocha --reporter "$REPORTER" --exit "${lane2[@]}" > test-output/lane-2.log 2>&1 &
lane2_pid=$!
echo "[test] lane 1 on hosts $(lane_hosts 0) below; lane 2 on hosts $(lane_hosts 4) writes test-output/lane-2.log, shown when it ends" >&2
rc1=0
FERRY_TEST_HOSTS=$(lane_hosts 0) FERRY_TEST_STATS=test-output/lane-1.stats \
  npx mocha --reporter "$REPORTER" --exit "${lane1[@]}" || rc1=$?
rc2=0
wait "$lane2_pid" || rc2=$?
echo
echo "======== lane 2 (hosts $(lane_hosts 4)) ========"
cat test-output/lane-2.log
# One closing line for the whole suite; a lane that wrote no counts (mocha died) is a failure.
REPORTER=$(pwd)/$REPORTER node -e '
  const fs = require("fs");
  const { line } = require(process.env.REPORTER);
  const sum = { passed: 0, failed: 0, skipped: 0 };
  const times = [];
  for (const [i, f] of process.argv.slice(1).entries()) {
    if (!fs.existsSync(f)) { console.error(`${f}: missing, that lane did not finish`); sum.failed++; continue; }
    const c = JSON.parse(fs.readFileSync(f, "utf8"));
    for (const k of Object.keys(sum)) sum[k] += c[k];
    for (const [file, ms] of Object.entries(c.files ?? {})) times.push(`${Math.round(ms / 1000)} s ${file} (lane ${i + 1})`);
  }
  times.sort((a, b) => parseInt(b) - parseInt(a));
  console.error(`[test] the slowest files: ${times.slice(0, 12).join(", ")}`);
  process.stdout.write(line(sum));
' test-output/lane-1.stats test-output/lane-2.stats
echo "[test] both lanes done in $((SECONDS - t0)) s (lane 1 exit $rc1, lane 2 exit $rc2)" >&2
[ "$rc1" = 0 ] && [ "$rc2" = 0 ]
