import { join } from 'node:path';

/**
 * Post-copy through podman 4.3, which passes no lazy-pages option to its runtime.
 *
 * podman runs an existing container with the runtime *named* when it was created ("runc"), and
 * looks that name up in containers.conf. A containers.conf of Ferry's own, given to one podman
 * command with CONTAINERS_CONF, points the name at the script below, so only that command is
 * affected and no file of the host is changed. The script passes everything through to the
 * real runc except:
 *
 * - `checkpoint` (source): runc's ordinary dump to the local disk (fast: no pipes, no network),
 *   then the lazy pages are split off (splitMain.js): the images podman exports carry only the
 *   few pages a restore needs up front, and the complete dump stays beside them on the source's
 *   disk, in the container's own userdata folder. That copy is what makes rollback possible
 *   until the destination holds every page; it is served by `criu page-server --lazy-pages`.
 *   If the split fails, the dump is left whole and podman exports it as usual (plain path).
 * - `restore` (destination): CRIU's lazy-pages daemon is started first, as a supervised child
 *   of its own session, then runc restores with --lazy-pages. The supervisor records the
 *   daemon's exit code, and if the daemon fails or outlives the deadline it kills the restored
 *   container: a process whose daemon is gone reads zeros where its pages are missing, so it
 *   must not run on.
 * - `__ferry_page_server` (source): the page server, supervised the same way; started by the
 *   checkpoint right after the split, or by serveLazyPages.
 *
 * Everything a migration writes is under `dir` (default /var/lib/ferry/postcopy/<migration>),
 * plus the kept dump in the container's userdata folder, which podman removes with the
 * container.
 */

export const POSTCOPY_DIR = '/var/lib/ferry/postcopy';

/** Files of one migration's post-copy state on one host; every name derives from the migration id. */
export interface LazyPaths {
  dir: string;
  /** The runtime wrapper podman is pointed at. */
  runtime: string;
  /** The containers.conf naming it (CONTAINERS_CONF for podman). */
  containersConf: string;
  /**
   * Source: "splitting\nIMAGES\nKEEP\n" while the dump is split, "lazy\nIMAGES\nKEEP\n" after, "whole\nIMAGES\n" when the
   * split failed, "failed RC" when runc's dump did.
   */
  checkpointState: string;
  splitJson: string;
  /** Destination: a byte appears once the lazy-pages daemon listens for the restore. */
  lazyStatus: string;
  /** Destination: "RC MILLIS" once the lazy-pages daemon ended; RC 0 = every page arrived. */
  lazyRc: string;
  /** Destination: "killed MILLIS" when the supervisor killed the restored container. */
  lazyKilled: string;
  /** Destination: CRIU's last error lines (one line), kept when the lazy-pages daemon failed. */
  lazyErr: string;
  lazyPid: string;
  /** Destination: the pid of the lazy-pages daemon's supervisor (it writes lazy.rc, and kills the copy on failure). */
  lazySup: string;
  /** Destination: the current lazy restore's nonce; a supervisor or restore from an earlier one that finds another nonce writes and kills nothing. */
  lazyGen: string;
  /** Source: the page server's readiness byte, exit code and pid; `serverStarted` exists from its launch on. */
  serverStarted: string;
  serverStatus: string;
  serverRc: string;
  serverPid: string;
  /** Source: CRIU's last error lines (one line), kept when the page server failed. */
  serverErr: string;
  /** Source: OpenSSH's control socket of the page tunnel. */
  tunnelControl: string;
  tunnelLog: string;
  /**
   * Source: fs.pipe-max-size is one value for the whole host, shared by every post-copy
   * migration there. `pipeMaxHeld` says this migration needs it raised; `pipeMaxBefore` (one
   * per host) keeps the value from before the first raise; `pipeMaxLock` orders the changes.
   */
  pipeMaxHeld: string;
  pipeMaxBefore: string;
  pipeMaxLock: string;
}

const MIGRATION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function lazyPaths(migrationId: string, root = POSTCOPY_DIR): LazyPaths {
  if (!MIGRATION_ID.test(migrationId)) throw new Error(`not a usable migration id for post-copy files: ${JSON.stringify(migrationId)}`);
  const dir = join(root, migrationId);
  const f = (n: string) => join(dir, n);
  return {
    dir,
    runtime: f('runc'),
    containersConf: f('containers.conf'),
    checkpointState: f('checkpoint'),
    splitJson: f('split.json'),
    lazyStatus: f('lazy.status'),
    lazyRc: f('lazy.rc'),
    lazyKilled: f('lazy.killed'),
    lazyErr: f('lazy.err'),
    lazyPid: f('lazy.pid'),
    lazyGen: f('lazy.gen'),
    lazySup: f('lazy.sup'),
    serverStarted: f('server.started'),
    serverStatus: f('server.status'),
    serverRc: f('server.rc'),
    serverPid: f('server.pid'),
    serverErr: f('server.err'),
    tunnelControl: f('tunnel.ctl'),
    tunnelLog: f('tunnel.log'),
    pipeMaxHeld: f('pipe-max-size.held'),
    pipeMaxBefore: join(root, 'pipe-max-size.before'),
    pipeMaxLock: join(root, 'pipe-max-size.lock'),
  };
}

export interface WrapperSettings {
  migrationId: string;
  /** The real runc. */
  runc: string;
  /** Source: node and the compiled splitMain.js on that host. */
  node: string;
  splitScript: string;
  /** Destination: the local port the lazy-pages daemon connects to (the tunnel's end on this host). */
  lazyPort: number;
  /** Source: the loopback port of the page server, started right after the split (0: not then). */
  serverPort: number;
  /** Destination: the lazy-pages daemon (and with it the container) is killed if not done by then. */
  deadlineSeconds: number;
  root?: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function wrapperScript(s: WrapperSettings): string {
  const p = lazyPaths(s.migrationId, s.root);
  // serverPort 0: the checkpoint does not start the page server (serveLazyPages will).
  for (const [port, min] of [
    [s.lazyPort, 1],
    [s.serverPort, 0],
  ])
    if (!Number.isInteger(port) || port < min || port > 65535) throw new Error(`bad post-copy port ${port}`);
  if (!Number.isInteger(s.deadlineSeconds) || s.deadlineSeconds < 1) throw new Error(`bad post-copy deadline ${s.deadlineSeconds}`);
  return `#!/bin/sh
# Written by Ferry for migration ${s.migrationId}: runc for the podman commands run with
# CONTAINERS_CONF=${p.containersConf} (post-copy; see src/postcopy/wrapper.ts).
RUNC=${q(s.runc)}
STATE=${q(p.dir)}
NODE=${q(s.node)}
SPLIT=${q(s.splitScript)}
PORT=${s.lazyPort}
SERVER_PORT=${s.serverPort}
DEADLINE=${s.deadlineSeconds}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# A host whose runc is elsewhere: the one on the standard path (never this script, which is not on it).
[ -x "$RUNC" ] || RUNC=$(command -v runc) || { echo "ferry: runc not found (looked for $RUNC and on $PATH)" >&2; exit 127; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# A newer lazy restore wrote another nonce. A missing nonce file is no sign of one: the kills
# that keep a copy from running on missing pages must not depend on a file being there.
superseded() { [ -e "$STATE/lazy.gen" ] && [ "$(cat "$STATE/lazy.gen" 2>/dev/null)" != "$1" ]; }
put() { printf '%s\\n' "$2" > "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }
# CRIU's last error lines of a log, as one line (what a failed daemon's verdict carries).
criu_errors() { tail -n 2000 "$1" 2>/dev/null | grep -E 'Error|error' | tail -n 3 | tr -s '\\n\\t' '  ' | cut -c1-600; }

# Ferry's own entry points (never called by podman).
case "$1" in
__ferry_lazy_daemon)
  # Destination: supervise criu lazy-pages for one restore. A supervisor whose restore was
  # superseded (its nonce replaced) stops its daemon and touches nothing else: the pid file
  # and the state files now belong to the newer restore.
  img=$2 work=$3 pidfile=$4 gen=$5
  superseded "$gen" && exit 0
  # Who stops a daemon waits for this process (not for its deadline watcher, a fork of it).
  put "$STATE/lazy.sup" "$$"
  criu lazy-pages --page-server --address 127.0.0.1 --port "$PORT" -D "$img" -W "$work" -o lazy-pages.log --status-fd 3 3>"$STATE/lazy.status" </dev/null >/dev/null 2>&1 &
  lp=$!
  if superseded "$gen"; then kill -9 "$lp"; exit 0; fi
  put "$STATE/lazy.pid" "$lp"
  # The deadline: one-second naps, so this watcher ends within a second of the daemon, and
  # kills only a daemon that outlived the deadline (never a pid reused after it ended).
  ( n=0; while [ ! -e "$STATE/lazy.rc" ] && kill -0 "$lp" 2>/dev/null && [ "$n" -lt "$DEADLINE" ]; do sleep 1; n=$((n+1)); done
    [ "$n" -ge "$DEADLINE" ] && [ ! -e "$STATE/lazy.rc" ] && kill -9 "$lp" ) </dev/null >/dev/null 2>&1 &
  wait "$lp"
  rc=$?
  superseded "$gen" && exit 0
  if [ "$rc" -ne 0 ]; then
    # Pages it had not yet received would read as zeros: the container must not run on.
    [ -s "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
    put "$STATE/lazy.killed" "killed $(ms)"
    # The log goes with podman's work folder: the cause is kept where Ferry reads the verdict.
    put "$STATE/lazy.err" "$(criu_errors "$work/lazy-pages.log")"
  fi
  put "$STATE/lazy.rc" "$rc $(ms)"
  exit 0 ;;
__ferry_page_server)
  # Source: serve the kept dump to one lazy-pages daemon, on loopback only (the tunnel's end).
  keep=$2 port=$3
  criu page-server --lazy-pages --address 127.0.0.1 --port "$port" -D "$keep" -W "$STATE" -o page-server.log --status-fd 3 3>"$STATE/server.status" </dev/null >/dev/null 2>&1 &
  ps=$!
  put "$STATE/server.pid" "$ps"
  wait "$ps"
  rc=$?
  [ "$rc" -ne 0 ] && put "$STATE/server.err" "$(criu_errors "$STATE/page-server.log")"
  put "$STATE/server.rc" "$rc $(ms)"
  exit 0 ;;
esac

# Which runc command this is, and the options Ferry needs from it.
cmd= cmdpos=0 i=0 prev= img= work= pidfile= help= root= last=
for a in "$@"; do
  i=$((i+1))
  last=$a
  case "$prev" in
    --root) root=$a ;;
    --image-path) img=$a ;;
    --work-path) work=$a ;;
    --pid-file) pidfile=$a ;;
  esac
  case "$a" in
    --image-path=*) img=\${a#*=} ;;
    --work-path=*) work=\${a#*=} ;;
    --pid-file=*) pidfile=\${a#*=} ;;
    --root=*) root=\${a#*=} ;;
    --help|-h) help=1 ;;
  esac
  if [ -z "$cmd" ]; then
    case "$prev" in --log|--log-format|--root|--criu|--rootless) prev=; continue ;; esac
    case "$a" in -*) ;; *) cmd=$a cmdpos=$i ;; esac
  fi
  prev=$a
done

if [ "$cmd" = checkpoint ] && [ -z "$help" ] && [ -n "$img" ]; then
  mkdir -p "$STATE"
  "$RUNC" "$@"
  rc=$?
  if [ "$rc" -ne 0 ]; then put "$STATE/checkpoint" "failed $rc"; exit "$rc"; fi
  keep="\${img%/}.ferry-lazy"
  if [ -e "$keep" ]; then
    put "$STATE/checkpoint" "$(printf 'whole\\n%s' "$img")"
  elif put "$STATE/checkpoint" "$(printf 'splitting\n%s\n%s' "$img" "$keep")" && "$NODE" "$SPLIT" split "$img" "$keep" > "$STATE/split.json" 2> "$STATE/split.err"; then
    put "$STATE/checkpoint" "$(printf 'lazy\\n%s\\n%s' "$img" "$keep")"
    # The page server loads every page before it listens (about 1 s per GB): started now, it
    # does so while podman exports, not after.
    if [ "$SERVER_PORT" -gt 0 ]; then
      rm -f "$STATE/server.status" "$STATE/server.rc" "$STATE/server.pid"
      : > "$STATE/server.started"
      setsid -f "$0" __ferry_page_server "$keep" "$SERVER_PORT" </dev/null >/dev/null 2>&1
    fi
  else
    put "$STATE/checkpoint" "$(printf 'whole\\n%s' "$img")"
  fi
  exit 0
fi

if [ "$cmd" = restore ] && [ -z "$help" ] && [ -n "$img" ] && [ -n "$work" ]; then
  mkdir -p "$STATE"
  rm -f "$STATE/lazy.rc" "$STATE/lazy.killed" "$STATE/lazy.pid"
  gen="$(date +%s%N).$$"
  put "$STATE/lazy.gen" "$gen"
  : > "$STATE/lazy.status"
  setsid -f "$0" __ferry_lazy_daemon "$img" "$work" "$pidfile" "$gen" </dev/null >/dev/null 2>&1
  n=0
  while [ ! -s "$STATE/lazy.status" ] && [ ! -e "$STATE/lazy.rc" ]; do
    n=$((n+1))
    if [ "$n" -gt 1000 ]; then
      superseded "$gen" || { [ -s "$STATE/lazy.pid" ] && kill -9 "$(cat "$STATE/lazy.pid")" 2>/dev/null; }
      echo "ferry: criu lazy-pages did not get ready in 10 s; see $work/lazy-pages.log" >&2
      exit 1
    fi
    sleep 0.01
  done
  if [ -e "$STATE/lazy.rc" ]; then
    echo "ferry: criu lazy-pages exited ($(cat "$STATE/lazy.rc")) before the restore; see $work/lazy-pages.log" >&2
    exit 1
  fi
  i=0
  for a in "$@"; do
    i=$((i+1))
    [ "$i" -eq 1 ] && set --
    set -- "$@" "$a"
    [ "$i" -eq "$cmdpos" ] && set -- "$@" --lazy-pages
  done
  # A daemon that fails while runc restores (the page server died, the link broke) leaves
  # CRIU's restore waiting for it with no deadline of its own, and the half-restored init
  # cannot be deleted: a watcher stops runc, its CRIU and every task CRIU forked (stopped
  # first, so none forks while the tree is read, then killed), so the restore fails. runc
  # stays in the foreground: in the background sh would give it /dev/null for stdin, and runc
  # hands its stdio to the restored container.
  # A runc and CRIU killed mid-restore leave their mounts: the container's root at
  # $root/<id>/criu-root, CRIU's cgroup yard in the work folder. Seen here: podman's clean-up
  # then failed ("unlinkat .../criu-root: device or resource busy") after removing runc's
  # state.json, and the folder left without a state reads as a restore still under way, which
  # held the retries and the rollback for minutes. Once every task is gone, the watcher detaches
  # those mounts and deletes the container from runc (or, with no state left, removes the
  # folder, never across a mount: criu-root is the container's root filesystem).
  rt_dir="\${root:-/run/runc}/$last"
  # Written when runc has returned: the watcher ends at its next look, or finishes what it began.
  ran="$STATE/runc-returned.$$"
  ( read -r me _ < /proc/self/stat
    tree() { echo "$1"; for t in $(pgrep -P "$1"); do tree "$t"; done; }
    below() { for c in $(pgrep -P $$); do [ "$c" = "$me" ] || tree "$c"; done; }
    alive() { for t in "$@"; do [ -e "/proc/$t" ] && [ "$(cut -d' ' -f3 "/proc/$t/stat" 2>/dev/null)" != Z ] && return 0; done; return 1; }
    mounts() { awk -v a="$rt_dir/" -v b="\${work%/}/.criu." 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
    while [ ! -e "$ran" ] && [ -d "$STATE" ] && kill -0 $$ 2>/dev/null && sleep 0.1; do
      if [ -e "$STATE/lazy.rc" ] && [ "$(cut -d' ' -f1 "$STATE/lazy.rc")" != 0 ] && ! superseded "$gen"; then
        first=$(below)
        kill -STOP $first 2>/dev/null
        gone=$(below)
        kill -9 $gone 2>/dev/null
        # A pid of the first list that ended and was reused before the STOP is let go.
        kill -CONT $first 2>/dev/null
        n=0; while alive $gone && [ "$n" -lt 100 ]; do sleep 0.05; n=$((n+1)); done
        # Only a container id's folder (podman names the container last: 64 hex digits).
        case "$last" in *[!0-9a-f]*) ;; *)
          if [ "\${#last}" -eq 64 ] && ! alive $gone; then
            mounts | while read -r mp; do umount -l "$mp"; done
            [ -e "$rt_dir/state.json" ] && "$RUNC" \${root:+--root "$root"} delete --force "$last"
            # Never removed while anything is mounted in it (a bind mount may share its device).
            [ -e "$rt_dir/state.json" ] || [ -n "$(mounts)" ] || rm -rf --one-file-system "$rt_dir"
          fi ;;
        esac
        exit 0
      fi
    done ) </dev/null >/dev/null 2>&1 &
  wd=$!
  "$RUNC" "$@"
  rc=$?
  # Should the file not be written (the folder removed meanwhile), the watcher is stopped instead.
  : > "$ran" 2>/dev/null || kill "$wd" 2>/dev/null
  wait "$wd"
  rm -f "$ran"
  if [ "$rc" -ne 0 ]; then
    # No restored process will ever hand the daemon its memory: stop it (unless it is a newer restore's).
    superseded "$gen" || { [ -s "$STATE/lazy.pid" ] && kill -9 "$(cat "$STATE/lazy.pid")" 2>/dev/null; }
    exit "$rc"
  fi
  # The daemon may have failed while runc restored, before the pid file existed.
  if ! superseded "$gen" && [ -e "$STATE/lazy.rc" ] && [ "$(cut -d' ' -f1 "$STATE/lazy.rc")" != 0 ]; then
    [ -s "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
    put "$STATE/lazy.killed" "killed $(ms)"
    echo "ferry: criu lazy-pages failed during the restore; the restored container was killed" >&2
    exit 1
  fi
  exit 0
fi

exec "$RUNC" "$@"
`;
}

/**
 * A shell script, run on the host, that writes a containers.conf naming `runtime` as "runc":
 * the host's own containers.conf (/etc first, else /usr/share) with `runc = [...]` in its
 * [engine.runtimes] table, added or replaced. CONTAINERS_CONF makes podman read that one file
 * only, so it must carry the host's settings too. Drop-in folders (containers.conf.d) are not
 * merged.
 */
export const CONTAINERS_CONF_SCRIPT = [
  'set -e',
  'out=$1 runtime=$2 base=$3',
  '[ -n "$base" ] || base=/etc/containers/containers.conf',
  '[ -f "$base" ] || base=/usr/share/containers/containers.conf',
  '[ -f "$base" ] || base=/dev/null',
  'line="runc = [\\"$runtime\\"]"',
  `awk -v line="$line" '
skip { if ($0 ~ /\\]/) skip = 0; next }
/^[[:space:]]*\\[/ { intable = ($0 ~ /^[[:space:]]*\\[engine\\.runtimes\\][[:space:]]*(#.*)?$/); print; if (intable) { print line; found = 1 }; next }
intable && /^[[:space:]]*runc[[:space:]]*=/ { if ($0 !~ /\\]/) skip = 1; next }
{ print }
END { if (!found) { print ""; print "[engine.runtimes]"; print line } }' "$base" > "$out.tmp.$$"`,
  'mv -f "$out.tmp.$$" "$out"',
].join('\n');

/** An argument vector that installs the wrapper and its containers.conf for one migration on one host. */
export function installArgv(s: WrapperSettings): string[] {
  const p = lazyPaths(s.migrationId, s.root);
  const script = [
    'set -e',
    'umask 077',
    'dir=$1 runtime=$2 conf=$3',
    'mkdir -p "$dir"',
    'printf "%s" "$4" > "$runtime.tmp.$$"',
    'chmod 700 "$runtime.tmp.$$"',
    'mv -f "$runtime.tmp.$$" "$runtime"',
    `sh -c ${q(CONTAINERS_CONF_SCRIPT)} ferry-containers-conf "$conf" "$runtime"`,
  ].join('\n');
  return ['sh', '-c', script, 'ferry-postcopy-install', p.dir, p.runtime, p.containersConf, wrapperScript(s)];
}

/**
 * podman's command prefix for the commands that must go through the wrapper. The variable is
 * set right before podman itself: a prefix such as `sudo podman` would drop it from the
 * environment if it came first.
 */
export function podmanWithWrapper(migrationId: string, podman: readonly string[] = ['podman'], root?: string): string[] {
  const env = ['env', `CONTAINERS_CONF=${lazyPaths(migrationId, root).containersConf}`];
  const at = podman.findIndex((a) => a === 'podman' || a.endsWith('/podman'));
  return at < 0 ? [...env, ...podman] : [...podman.slice(0, at), ...env, ...podman.slice(at)];
}
