#!/usr/bin/env bash
# A real demo on a local test bed: hosts a and b (network namespaces with their own sshd,
# podman storage and Ferry worker), an httpd and a counter started on a, both live-migrated
# to b with progress shown, then the page fetched from b and the counter shown to go on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh

BED=${FERRY_BED_DIR:-/var/lib/ferry-bed}
CONFIG=$BED/ferry.json
export FERRY_CONFIG=$CONFIG
ferry() { node bin/ferry.js "$@"; }
on() { bash scripts/bed.sh exec "$@"; }
addr() { node -p "require('$BED/bed.json').hosts.find(h => h.name === '$1').address"; }
IMAGE=$(node -p "require('$BED/bed.json').image")
A=$(addr a); B=$(addr b)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting Ferry workers on hosts a, b and c"
bash scripts/bed.sh workers-start

say "clean slate: removing demo containers left by an earlier run"
for h in a b c; do on "$h" podman rm -f -t 0 web counter >/dev/null 2>&1 || true; done

say "on host a: an httpd publishing port 8080, and a counter that keeps its count in memory"
on a podman run -d --name web -p 8080:80 "$IMAGE" /bin/httpd -f -p 80 -h /www >/dev/null
on a podman run -d --name counter "$IMAGE" sh -c 'tok=$RANDOM; i=0; while :; do i=$((i+1)); echo "run $tok count $i" > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done' >/dev/null
sleep 2
echo "curl http://$A:8080/  ->  $(curl -s "http://$A:8080/")"
echo "counter on a: $(on a podman exec counter cat /tmp/count)"

say "ferry migrate web --from a --to b --wait"
ferry migrate web --from a --to b --wait --probe http:8080/

say "ferry migrate counter --from a --to b --wait"
before=$(on a podman exec counter cat /tmp/count)
echo "counter on a just before: $before"
ferry migrate counter --from a --to b --wait --probe 'exec:cat /tmp/count'

say "the result"
echo "curl http://$B:8080/  ->  $(curl -s "http://$B:8080/")"
if curl -s -m 2 "http://$A:8080/" >/dev/null; then echo "a still answers on 8080: UNEXPECTED"; exit 1; else echo "a no longer answers on 8080 (as it should)"; fi
echo "counter on b now: $(on b podman exec counter cat /tmp/count)  (same run token, higher count: memory state went along)"
echo "containers on a: $(on a podman ps -a --format '{{.Names}}' | grep -xE 'web|counter' | tr '\n' ' ' || true)(none expected)"
echo "containers on b: $(on b podman ps --format '{{.Names}} {{.Status}}' | grep -E '^(web|counter) ' | tr '\n' ';')"
echo "archives left on a: $(on a ls /var/lib/ferry/archives 2>/dev/null | wc -l), on b: $(on b ls /var/lib/ferry/archives 2>/dev/null | wc -l)"

say "ferry status (most recent migrations)"
ferry status --limit 5
cat <<MSG

The bed stays up so you can keep going, e.g.:
  export FERRY_CONFIG=$CONFIG
  node bin/ferry.js migrate web --from b --to a --wait
  node bin/ferry.js status
Take it down with: bash scripts/bed.sh down
MSG
