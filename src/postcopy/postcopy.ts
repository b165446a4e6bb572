import { CommandError, FerryError } from '../errors';
import type { CommandResult, CommandRunner, RunOptions } from '../exec/runner';
import type { SplitResult } from './criuImages';
import { PIPE_SIZE_NEEDED } from './probe';
import { installArgv, LazyPaths, lazyPaths, podmanWithWrapper } from './wrapper';

/*
 * Post-copy (CRIU lazy pages) for a podman container, as calls Ferry's steps can make. The
 * order, and who may do what when, is in docs/post-copy.md; in short:
 *
 *   source                                  destination
 *   installLazyRuntime, raisePipeMaxSize    installLazyRuntime
 *   openPageTunnel (ssh -R, before the freeze)
 *   prepareLazyCheckpoint  (freeze; dump to disk; split; export ~200 KB)
 *   serveLazyPages (from the kept dump)
 *   ship the archive (Ferry's transfer)
 *                                           lazyRestore  (the container runs here from now on)
 *                                           waitAllPagesCopied  -> every page is here
 *   finishOnSource (stop, close, delete the kept dump)
 *
 * Until waitAllPagesCopied says complete, the source's disk holds the whole container and
 * rollbackInPlace can bring it back there, after abortLazyRestore made sure the destination's
 * copy is dead.
 */

export class PostCopyError extends FerryError {
  constructor(message: string, opts: { code?: string; permanent?: boolean; cause?: unknown } = {}) {
    super(message, { code: opts.code ?? 'POSTCOPY_FAILED', permanent: opts.permanent, cause: opts.cause });
    this.name = 'PostCopyError';
    Object.setPrototypeOf(this, PostCopyError.prototype);
  }
}

/** One migration's post-copy parameters; the same on both hosts. */
export interface LazyMigration {
  migrationId: string;
  /** Loopback port of the page server on the source. */
  serverPort: number;
  /** Loopback port on the destination where the tunnel ends and the lazy-pages daemon connects. */
  lazyPort: number;
  /** The destination kills its copy if not every page arrived by then (seconds from its restore). */
  deadlineSeconds: number;
  /** Folder for Ferry's post-copy files (default /var/lib/ferry/postcopy). */
  root?: string;
}

/** What names a migration's post-copy files on a host: enough to find and remove them when the rest is lost. */
export type LazyFiles = Pick<LazyMigration, 'migrationId' | 'root'>;

export interface LazyHost {
  runner: CommandRunner;
  /** podman's command prefix on that host (default ['podman']). */
  podman?: readonly string[];
}

/** How the source reaches the destination's sshd (Ferry's host config). */
export interface SshTarget {
  user: string;
  address: string;
  port: number;
  privateKey: string;
  knownHosts: string;
}

export function pathsOf(m: LazyFiles): LazyPaths {
  return lazyPaths(m.migrationId, m.root);
}

async function must(runner: CommandRunner, argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  const res = await runner.run(argv, opts);
  if (res.code !== 0) throw new CommandError(runner.where, argv, res.code, res.stderr + (res.stderr ? '' : res.stdout));
  return res;
}

/** Commands whose output is only a diagnosis: never let them fail the caller. */
async function quiet(runner: CommandRunner, argv: readonly string[]): Promise<string> {
  try {
    const r = await runner.run(argv, { timeoutMs: 10_000 });
    return r.stdout.trim();
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- setup (before the freeze)

export interface InstallOptions {
  runc?: string;
  /** Source: node and the compiled splitMain.js on that host. */
  node: string;
  splitScript: string;
}

/** Writes the runtime wrapper and its containers.conf for this migration on one host (both hosts need it). */
export async function installLazyRuntime(runner: CommandRunner, m: LazyMigration, opts: InstallOptions): Promise<LazyPaths> {
  const argv = installArgv({
    migrationId: m.migrationId,
    runc: opts.runc ?? '/usr/bin/runc',
    node: opts.node,
    splitScript: opts.splitScript,
    lazyPort: m.lazyPort,
    serverPort: m.serverPort,
    deadlineSeconds: m.deadlineSeconds,
    root: m.root,
  });
  const res = await runner.run(argv, { timeoutMs: 20_000 });
  if (res.code !== 0) throw new CommandError(runner.where, argv.slice(0, 2), res.code, res.stderr);
  return pathsOf(m);
}

/** The machine-wide limit raisePipeMaxSize changes. */
export const PIPE_MAX_SYSCTL = '/proc/sys/fs/pipe-max-size';

/**
 * CRIU's page server needs a 4 MiB pipe. Without CAP_SYS_RESOURCE (this test bed drops it)
 * that takes fs.pipe-max-size >= 4 MiB, one setting for the whole host. Each post-copy
 * migration marks that it needs it; the first raise keeps the old value, once per host; the
 * limit goes back only when no migration there still needs it (restorePipeMaxSize): lowered
 * under a running one, its next pipe would fail and take its page copy with it. Returns the
 * old value when this call raised it.
 */
export async function raisePipeMaxSize(runner: CommandRunner, m: LazyFiles, sysctl = PIPE_MAX_SYSCTL): Promise<number | null> {
  const p = pathsOf(m);
  const script = [
    'mkdir -p "$(dirname "$1")" "$(dirname "$3")"',
    'exec 9>"$2"; flock -w 30 9 || exit 75',
    ': > "$3"',
    'cur=$(cat "$4")',
    'if [ "$cur" -lt "$5" ]; then [ -e "$1" ] || echo "$cur" > "$1"; echo "$5" > "$4"; echo "$cur"; fi',
  ].join('\n');
  const res = await must(runner, ['sh', '-c', script, 'ferry-pipe-max', p.pipeMaxBefore, p.pipeMaxLock, p.pipeMaxHeld, sysctl, String(PIPE_SIZE_NEEDED)]);
  const before = Number(res.stdout.trim());
  return res.stdout.trim() && Number.isFinite(before) ? before : null;
}

/**
 * This migration no longer needs the raised limit; the last one to say so on the host puts
 * back what the first raise changed. A migration that ended without saying so (its folder
 * removed) holds nothing.
 */
export async function restorePipeMaxSize(runner: CommandRunner, m: LazyFiles, sysctl = PIPE_MAX_SYSCTL): Promise<void> {
  const p = pathsOf(m);
  const script = [
    '[ -d "$(dirname "$2")" ] || exit 0',
    'exec 9>"$2"; flock -w 30 9 || exit 75',
    'rm -f "$3"',
    'for h in "$(dirname "$2")"/*/"$(basename "$3")"; do [ -e "$h" ] && exit 0; done',
    '[ -e "$1" ] || exit 0',
    'cat "$1" > "$4" && rm -f "$1"',
  ].join('\n');
  await must(runner, ['sh', '-c', script, 'ferry-pipe-max', p.pipeMaxBefore, p.pipeMaxLock, p.pipeMaxHeld, sysctl]);
}

function sshBase(t: SshTarget): string[] {
  return ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${t.knownHosts}`, '-i', t.privateKey, '-p', String(t.port)];
}

/**
 * The pages' way from the source to the destination: an SSH connection from the source with a
 * remote forward, destination 127.0.0.1:lazyPort -> source 127.0.0.1:serverPort. Opened before
 * the freeze (the page server need not listen yet). OpenSSH's -f with ExitOnForwardFailure
 * returns only once the forward is set up; its control socket is how it is closed. Either port
 * taken: PostCopyError (POSTCOPY_PORT_TAKEN, or POSTCOPY_TUNNEL for the destination's): choose
 * others and call again.
 */
export async function openPageTunnel(source: CommandRunner, m: LazyMigration, dest: SshTarget): Promise<void> {
  const p = pathsOf(m);
  // The page server binds its port only after the freeze: a port taken now would fail it then.
  const taken = await source.run(['sh', '-c', 'ss -Hltn "sport = :$1" | grep -q .', 'ferry-port-check', String(m.serverPort)], { timeoutMs: 10_000 });
  if (taken.code === 0) throw new PostCopyError(`${source.where}: port ${m.serverPort} is taken; pick other post-copy ports`, { code: 'POSTCOPY_PORT_TAKEN' });
  const ssh = [
    'ssh',
    '-f',
    '-N',
    '-M',
    '-S',
    p.tunnelControl,
    ...sshBase(dest),
    '-o',
    'ExitOnForwardFailure=yes',
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'ServerAliveCountMax=3',
    '-R',
    `127.0.0.1:${m.lazyPort}:127.0.0.1:${m.serverPort}`,
    `${dest.user}@${dest.address}`,
  ];
  // ssh -f keeps the descriptors it was given: a runner would wait for them to close.
  const argv = ['sh', '-c', 'log=$1; shift; mkdir -p "$(dirname "$log")"; exec "$@" </dev/null >/dev/null 2>>"$log"', 'ferry-page-tunnel', p.tunnelLog, ...ssh];
  const res = await source.run(argv, { timeoutMs: 30_000 });
  if (res.code !== 0) {
    const log = await quiet(source, ['tail', '-n', '5', p.tunnelLog]);
    throw new PostCopyError(`${source.where}: could not open the page tunnel to ${dest.address} (ssh exited ${res.code ?? 'on a signal'}): ${log || res.stderr.trim()}`, { code: 'POSTCOPY_TUNNEL' });
  }
  await askForTerminal(source, p, dest);
}

/**
 * OpenSSH turns Nagle's algorithm off (TCP_NODELAY) only once a session asks for a terminal,
 * and a tunnel opened with -N has no session: each page request (one 64 KiB reply, back to
 * 64 KiB after every fault) then waited on a delayed ACK. Measured on the bed, 32 bytes out
 * and 64 KiB back: 21.9 ms per round trip, 0.42 ms once a session on the same connection asked
 * for a terminal, 0.46 ms when sshd refused it (PermitTTY no: the asking is what counts),
 * 0.18 ms over plain TCP. So a second session joins the tunnel's connection through its
 * control socket and asks for one. Best effort: the tunnel works without it, only slower,
 * and its failure (a ForceCommand, a refused session) cannot touch the tunnel. Its remote
 * loop ends once its session does; without a terminal no hangup would end a plain sleep.
 */
async function askForTerminal(source: CommandRunner, p: LazyPaths, dest: SshTarget): Promise<void> {
  // ProxyCommand=false: should the control socket be gone by the time this session asks, ssh
  // would open a connection of its own instead, which nothing would ever close.
  const session = ['ssh', '-tt', '-S', p.tunnelControl, '-o', 'ProxyCommand=false', ...sshBase(dest), `${dest.user}@${dest.address}`, 'while kill -0 $PPID 2>/dev/null; do sleep 2; done'];
  const argv = ['sh', '-c', 'log=$1; shift; setsid "$@" </dev/null >/dev/null 2>>"$log" &', 'ferry-page-tunnel-nodelay', p.tunnelLog, ...session];
  await source.run(argv, { timeoutMs: 10_000 }).catch(() => undefined);
}

/** Closes the tunnel (nothing to do when it is gone already). */
export async function closePageTunnel(source: CommandRunner, m: LazyFiles, dest: SshTarget): Promise<void> {
  const p = pathsOf(m);
  // A socket whose master died (a killed ssh, a host restart) answers nothing and would make
  // every later open fail: it goes either way once the master was asked to exit.
  const script = 'ctl=$1; shift; [ -e "$ctl" ] || exit 0; "$@" >/dev/null 2>&1; rm -f "$ctl"';
  await must(source, ['sh', '-c', script, 'ferry-page-tunnel-close', p.tunnelControl, 'ssh', '-S', p.tunnelControl, '-O', 'exit', ...sshBase(dest), `${dest.user}@${dest.address}`], {
    timeoutMs: 15_000,
  });
}

// ---------------------------------------------------------------- the freeze, on the source

export interface LazyCheckpoint {
  /** 'lazy': the archive has no lazy pages, they wait in keepDir. 'whole': the split failed, the archive is an ordinary one. */
  mode: 'lazy' | 'whole';
  imagesDir: string;
  keepDir?: string;
  split?: SplitResult;
  /** podman's --print-stats output. */
  stats: string;
}

export interface CheckpointArgs {
  container: string;
  archive: string;
  compression: 'none' | 'gzip' | 'zstd';
  /** More podman checkpoint options (--tcp-established, --file-locks, ...). */
  extra?: readonly string[];
  /** podman's global flags before the subcommand (e.g. --runtime-flag criu=...). */
  globalFlags?: readonly string[];
  timeoutMs?: number;
}

/**
 * Freezes and checkpoints the container through the wrapper: runc's ordinary dump on local
 * disk, its lazy pages split off and kept in the container's userdata folder, then podman's
 * export of what is left (a few hundred KB). The container stays on the source, exited and
 * checkpointed, as with a plain checkpoint. Ferry's checkpoint step, which streams the export,
 * runs its own podman command with podmanWithWrapper() instead, then completeLazyCheckpoint().
 */
export async function prepareLazyCheckpoint(source: LazyHost, m: LazyMigration, a: CheckpointArgs): Promise<LazyCheckpoint> {
  const p = pathsOf(m);
  const podman = source.podman ?? ['podman'];
  const rt = await must(source.runner, [...podman, 'container', 'inspect', '--format', '{{.OCIRuntime}}', a.container]);
  if (rt.stdout.trim() !== 'runc') throw new PostCopyError(`container "${a.container}" runs with ${rt.stdout.trim()}, not runc: post-copy wraps runc only`, { code: 'POSTCOPY_UNSUPPORTED', permanent: true });
  await must(source.runner, ['rm', '-f', p.checkpointState, p.splitJson]);
  const argv = [...podmanWithWrapper(m.migrationId, podman, m.root), ...(a.globalFlags ?? []), 'container', 'checkpoint', '--export', a.archive, '--compress', a.compression, '--print-stats', ...(a.extra ?? []), a.container];
  const res = await source.runner.run(argv, { timeoutMs: a.timeoutMs });
  if (res.code !== 0) throw new CommandError(source.runner.where, argv, res.code, res.stderr);
  return completeLazyCheckpoint(source.runner, m, res.stdout);
}

/**
 * After podman's checkpoint through the wrapper returned: what the wrapper did, and the whole
 * dump put back into podman's checkpoint folder at once (hard links: instant). From then on the
 * checkpoint folder is an ordinary, complete one, so any in-place restore of the source (Ferry's
 * rollback, the frozen deadline, a checkpoint retry) works as after a plain checkpoint; the
 * kept folder is only what the page server reads.
 */
export async function completeLazyCheckpoint(source: CommandRunner, m: LazyMigration, stats: string): Promise<LazyCheckpoint> {
  const p = pathsOf(m);
  const state = (await must(source, ['cat', p.checkpointState])).stdout.split('\n');
  const [mode, imagesDir, keepDir] = state;
  if (mode === 'lazy' && imagesDir && keepDir) {
    const split = JSON.parse((await must(source, ['cat', p.splitJson])).stdout) as SplitResult;
    await putBackWholeDump(source, imagesDir, keepDir);
    return { mode: 'lazy', imagesDir, keepDir, split, stats };
  }
  if (mode === 'whole' && imagesDir) return { mode: 'whole', imagesDir, stats };
  throw new PostCopyError(`${source.where}: podman's checkpoint succeeded but the post-copy wrapper recorded "${state.join(' ').trim()}": was it used?`, { code: 'POSTCOPY_WRAPPER' });
}

const PUT_BACK = [
  'img=$1 keep=$2',
  '[ -d "$keep" ] || exit 0',
  // podman removes its checkpoint folder once a restore in place has used it: nothing to mend.
  '[ -d "$img" ] || exit 0',
  'for f in "$keep"/pagemap-*.img "$keep"/pages-*.img; do',
  '  [ -e "$f" ] || continue',
  '  n=${f##*/}',
  '  [ "$f" -ef "$img/$n" ] && continue',
  '  ln -f "$f" "$img/.$n.ferry-whole" && mv -f "$img/.$n.ferry-whole" "$img/$n"',
  'done',
].join('\n');

/**
 * Makes podman's checkpoint folder whole again from the kept dump (idempotent). A split folder
 * must never be restored without --lazy-pages: CRIU would read lazy entries from the wrong place
 * in the short pages image. completeLazyCheckpoint does this right after the export; call
 * ensureWholeDump before any in-place restore on the source in case a crash came in between.
 */
export async function putBackWholeDump(source: CommandRunner, imagesDir: string, keepDir: string): Promise<void> {
  await must(source, ['sh', '-c', PUT_BACK, 'ferry-put-back', imagesDir, keepDir]);
}

/** The folders of a migration's lazy dump on the source. */
export interface LazyDump {
  imagesDir: string;
  keepDir: string;
}

/**
 * What the source's disk says of this migration's dump: its folders when it was split (or a
 * split was under way when the host crashed), null when it was not or nothing is known. The
 * host's own word, which a record rewound by a Redis crash cannot take back.
 */
export async function readLazyDump(source: CommandRunner, m: LazyFiles): Promise<LazyDump | null> {
  const p = pathsOf(m);
  const res = await source.run(['sh', '-c', '[ -e "$1" ] || exit 0; cat "$1"', 'ferry-lazy-dump', p.checkpointState]);
  if (res.code !== 0) throw new CommandError(source.where, ['cat', p.checkpointState], res.code, res.stderr);
  const [mode, imagesDir, keepDir] = res.stdout.split('\n');
  if ((mode !== 'lazy' && mode !== 'splitting') || !imagesDir || !keepDir) return null;
  return { imagesDir, keepDir };
}

/** Makes podman's checkpoint folder whole again if this migration's dump was split; returns the dump's folders then. */
export async function ensureWholeDump(source: CommandRunner, m: LazyFiles): Promise<LazyDump | null> {
  const dump = await readLazyDump(source, m);
  if (dump) await putBackWholeDump(source, dump.imagesDir, dump.keepDir);
  return dump;
}

/**
 * Makes sure CRIU's page server runs on the source's loopback, serving the kept dump (so it holds
 * no page the disk does not), and returns once it listens. The checkpoint already started it
 * (it loads every page into pipes before it listens, about 0.05 s for 65 MB here, while podman
 * exports); it is started again if it has ended: each serves one lazy-pages daemon and exits.
 */
export async function serveLazyPages(source: CommandRunner, m: LazyMigration, keepDir: string, opts: { readyTimeoutMs?: number } = {}): Promise<void> {
  const p = pathsOf(m);
  const polls = Math.ceil((opts.readyTimeoutMs ?? 30_000) / 10);
  const script = [
    'rt=$1 keep=$2 port=$3 st=$4 rc=$5 pid=$6 n=$7 started=$8',
    // Started by the checkpoint already (and not ended): only wait. A server serves one session.
    'if [ -e "$rc" ] || [ ! -e "$started" ]; then',
    '  rm -f "$st" "$rc" "$pid"; : > "$started"',
    '  setsid -f "$rt" __ferry_page_server "$keep" "$port" </dev/null >/dev/null 2>&1',
    'fi',
    'i=0',
    'while [ ! -s "$st" ]; do',
    '  if [ -e "$rc" ]; then echo "the page server exited ($(cat "$rc"))"; exit 1; fi',
    '  i=$((i+1)); if [ "$i" -gt "$n" ]; then echo "the page server did not get ready"; exit 1; fi',
    '  sleep 0.01',
    'done',
  ].join('\n');
  const res = await source.run(['sh', '-c', script, 'ferry-page-server', p.runtime, keepDir, String(m.serverPort), p.serverStatus, p.serverRc, p.serverPid, String(polls), p.serverStarted], {
    timeoutMs: (opts.readyTimeoutMs ?? 30_000) + 10_000,
  });
  if (res.code !== 0) {
    const log = await quiet(source, ['sh', '-c', 'grep -E "Error|error" "$1" | tail -n 3', 'ferry-log', `${p.dir}/page-server.log`]);
    throw new PostCopyError(`${source.where}: ${res.stdout.trim() || 'the page server failed'}${log ? `: ${log}` : ''}`, { code: 'POSTCOPY_PAGE_SERVER' });
  }
}

/** Stops the page server if it still runs (its pid is checked to be that server's, not a reused one). */
export async function stopPageServer(source: CommandRunner, m: LazyFiles): Promise<void> {
  const p = pathsOf(m);
  const script = [
    'pidf=$1 rc=$2',
    '[ -e "$rc" ] && exit 0',
    '[ -s "$pidf" ] || exit 0',
    'pid=$(cat "$pidf")',
    'grep -q page-server "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid"',
    'i=0; while [ ! -e "$rc" ] && [ "$i" -lt 500 ]; do i=$((i+1)); sleep 0.01; done',
  ].join('\n');
  await must(source, ['sh', '-c', script, 'ferry-page-server-stop', p.serverPid, p.serverRc], { timeoutMs: 20_000 });
}

// ---------------------------------------------------------------- the destination

export interface RestoreArgs {
  archive: string;
  /** More podman restore options (--ignore-static-ip, --tcp-established, ...). */
  extra?: readonly string[];
  globalFlags?: readonly string[];
  timeoutMs?: number;
}

/**
 * `podman container restore --import` through the wrapper: the lazy-pages daemon starts, then
 * runc restores with --lazy-pages. When this returns, the container runs on the destination
 * while its memory is still arriving; the source keeps the whole dump until waitAllPagesCopied.
 */
export async function lazyRestore(dest: LazyHost, m: LazyMigration, a: RestoreArgs): Promise<string> {
  const podman = dest.podman ?? ['podman'];
  await forgetLazyRestore(dest.runner, m);
  const argv = [...podmanWithWrapper(m.migrationId, podman, m.root), ...(a.globalFlags ?? []), 'container', 'restore', '--import', a.archive, '--print-stats', ...(a.extra ?? [])];
  const res = await dest.runner.run(argv, { timeoutMs: a.timeoutMs });
  if (res.code !== 0) throw new CommandError(dest.runner.where, argv, res.code, res.stderr);
  return res.stdout;
}

export type LazyCopyState =
  | { state: 'not-started' }
  | { state: 'copying' }
  /** The lazy-pages daemon exited 0: every page is on the destination. */
  | { state: 'complete'; atMs: number }
  /** It failed (or was killed): the destination killed its copy of the container. */
  | { state: 'failed'; rc: number; atMs: number; containerKilled: boolean; cause: string };

function parseLazyState(out: string): LazyCopyState {
  const f = new Map(out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const rc = f.get('rc')?.trim();
  if (rc) {
    const [code, at] = rc.split(' ').map(Number);
    if (code === 0) return { state: 'complete', atMs: at };
    return { state: 'failed', rc: code, atMs: at, containerKilled: !!f.get('killed')?.trim(), cause: f.get('err')?.trim() ?? '' };
  }
  return f.get('started') === '1' ? { state: 'copying' } : { state: 'not-started' };
}

// err last: a line of CRIU's may hold anything but a newline.
const STATE_SCRIPT = 'echo "rc=$(cat "$1" 2>/dev/null)"; echo "killed=$(cat "$2" 2>/dev/null)"; [ -e "$3" ] && echo started=1; echo "err=$(cat "$5" 2>/dev/null)"';

/** A failed copy in words: the daemon's exit code and, when it logged one, CRIU's own reason. */
export function copyFailure(s: { rc: number; cause: string }): string {
  return `the page copy failed (criu lazy-pages exited ${s.rc}${s.cause ? `: ${s.cause}` : ''})`;
}

/**
 * Source: why the page server failed, as CRIU logged it, or '' (it runs, ended well, or said
 * nothing). Best effort: asked only to explain a failure that is already certain.
 */
export async function pageServerFailure(source: CommandRunner, m: LazyFiles): Promise<string> {
  const p = pathsOf(m);
  const res = await source
    .run(['sh', '-c', 'rc=$(cut -d" " -f1 "$1" 2>/dev/null); [ -n "$rc" ] && [ "$rc" != 0 ] && echo "exited $rc: $(cat "$2" 2>/dev/null)"; true', 'ferry-server-state', p.serverRc, p.serverErr], { timeoutMs: 10_000 })
    .catch(() => null);
  return res?.code === 0 ? res.stdout.trim() : '';
}

/** Where the page copy stands, as the destination's own files say. */
export async function readLazyCopy(dest: CommandRunner, m: LazyFiles): Promise<LazyCopyState> {
  const p = pathsOf(m);
  const res = await must(dest, ['sh', '-c', STATE_SCRIPT, 'ferry-lazy-state', p.lazyRc, p.lazyKilled, p.lazyStatus, '', p.lazyErr]);
  return parseLazyState(res.stdout);
}

/**
 * Waits until the destination's lazy-pages daemon has ended. Resolves with the moment every page
 * was there (the destination's clock, ms since the epoch); throws PostCopyError when it failed,
 * in which case the destination has already killed its copy. Each wait is one remote command
 * polling the file locally (no round trip per poll).
 */
export async function waitAllPagesCopied(dest: CommandRunner, m: LazyFiles, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<number> {
  const p = pathsOf(m);
  const until = Date.now() + opts.timeoutMs;
  const script = `i=0; while [ ! -e "$1" ] && [ "$i" -lt "$4" ]; do i=$((i+1)); sleep 0.02; done; ${STATE_SCRIPT}`;
  for (;;) {
    const left = until - Date.now();
    if (left <= 0) throw new PostCopyError(`${dest.where}: not every page arrived in ${opts.timeoutMs} ms`, { code: 'POSTCOPY_TIMEOUT' });
    const polls = Math.max(1, Math.floor(Math.min(left, 10_000) / 20));
    const res = await must(dest, ['sh', '-c', script, 'ferry-lazy-wait', p.lazyRc, p.lazyKilled, p.lazyStatus, String(polls), p.lazyErr], { timeoutMs: 30_000, signal: opts.signal });
    const s = parseLazyState(res.stdout);
    if (s.state === 'complete') return s.atMs;
    if (s.state === 'failed') {
      throw new PostCopyError(`${dest.where}: ${copyFailure(s)}; ${s.containerKilled ? 'the destination killed its copy of the container' : 'the container had not started there'}`, {
        code: 'POSTCOPY_COPY_FAILED',
      });
    }
    if (s.state === 'not-started') throw new PostCopyError(`${dest.where}: no lazy restore was started for migration ${m.migrationId}`, { code: 'POSTCOPY_NOT_STARTED' });
  }
}

const STOP_DAEMON = [
  'pidf=$1 rc=$2 supf=$3 runtime=$4',
  'if [ ! -e "$rc" ] && [ -s "$pidf" ]; then pid=$(cat "$pidf"); grep -q lazy-pages "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid"; fi',
  // Its supervisor writes rc after it killed the copy: while it lives without rc, that kill may
  // still come. One that is gone (the host restarted, it was killed) never writes rc: not waited
  // for. Its pid is checked to be that supervisor (`sh RUNTIME __ferry_lazy_daemon ...`), not a reused one.
  'alive() { [ ! -e "$rc" ] && [ -s "$supf" ] && tr "\\0" " " < "/proc/$(cat "$supf")/cmdline" 2>/dev/null | grep -qF -- "$runtime __ferry_lazy_daemon"; }',
  'end=$(( $(date +%s) + 5 )); while alive && [ "$(date +%s)" -lt "$end" ]; do sleep 0.02; done',
  'if alive; then echo "the lazy-pages supervisor of this migration did not end within 5 s"; exit 1; fi',
].join('\n');

/**
 * Kills the destination's lazy-pages daemon if it still runs (its supervisor then kills the
 * container it was feeding) and waits until its supervisor has recorded the end. Nothing to do
 * when none runs; throws when one runs on.
 */
export async function stopLazyDaemon(dest: CommandRunner, m: LazyFiles): Promise<void> {
  const p = pathsOf(m);
  const res = await dest.run(['sh', '-c', STOP_DAEMON, 'ferry-lazy-abort', p.lazyPid, p.lazyRc, p.lazySup, p.runtime], { timeoutMs: 20_000 });
  if (res.code !== 0) throw new PostCopyError(`${dest.where}: ${res.stdout.trim() || `could not stop the lazy-pages daemon: ${res.stderr.trim()}`}`, { code: 'POSTCOPY_DAEMON_RUNS' });
}

/**
 * Clears the destination's record of an earlier lazy restore, before a new one starts. Its
 * daemon is stopped first: left running, its supervisor would later kill the new copy through
 * the shared pid file, or write its own end as the new copy's. The nonce goes too, so a
 * supervisor that was still starting writes and kills nothing.
 */
export async function forgetLazyRestore(dest: CommandRunner, m: LazyFiles): Promise<void> {
  const p = pathsOf(m);
  await stopLazyDaemon(dest, m);
  await must(dest, ['rm', '-f', p.lazyGen, p.lazySup, p.lazyRc, p.lazyKilled, p.lazyStatus, p.lazyPid]);
}

export interface AbortResult {
  /** What the copy was when abort started. */
  before: LazyCopyState;
  /** True when the container no longer exists on the destination. */
  removed: boolean;
}

/**
 * The destination half of a rollback: make sure its copy of the container can never run again.
 * Kills the lazy-pages daemon if it still runs (its supervisor then kills the container), kills
 * the container directly too, then removes it. Refuses when every page had arrived, unless
 * `evenIfComplete`: then the destination's copy is whole and may have run on; removing it is
 * the caller's decision (Ferry's rollback after a failed verify makes it). With `containerId`,
 * a container of that name but another id is left alone (an error says so).
 */
export async function abortLazyRestore(dest: LazyHost, m: LazyMigration, container: string, opts: { evenIfComplete?: boolean; containerId?: string } = {}): Promise<AbortResult> {
  const podman = dest.podman ?? ['podman'];
  if (opts.containerId) {
    // Another container by that name is not ours to kill.
    const id = await dest.runner.run([...podman, 'container', 'inspect', '--format', '{{.Id}}', container], { timeoutMs: 30_000 });
    if (id.code === 0 && id.stdout.trim() !== opts.containerId)
      throw new PostCopyError(`${dest.runner.where} has another container named "${container}" (${id.stdout.trim().slice(0, 12)}); not touching it`, { code: 'POSTCOPY_NAME_TAKEN', permanent: true });
  }
  const before = await readLazyCopy(dest.runner, m);
  if (before.state === 'complete' && !opts.evenIfComplete) {
    throw new PostCopyError(`${dest.runner.where}: every page of "${container}" had arrived; not removing the destination's copy`, { code: 'POSTCOPY_ALREADY_COMPLETE', permanent: true });
  }
  await stopLazyDaemon(dest.runner, m);
  await dest.runner.run([...podman, 'container', 'kill', '--signal', 'KILL', container], { timeoutMs: 30_000 });
  await dest.runner.run([...podman, 'container', 'rm', '--force', '--time', '0', container], { timeoutMs: 60_000 });
  const exists = await dest.runner.run([...podman, 'container', 'exists', container], { timeoutMs: 30_000 });
  return { before, removed: exists.code === 1 };
}

// ---------------------------------------------------------------- the end, on the source

/**
 * Makes sure the checkpoint folder is whole (putBackWholeDump) and restores the container in
 * place with plain podman. Only after the destination's copy is
 * known dead: pass the AbortResult of abortLazyRestore, or `destinationNeverRestored` when the
 * destination never started a restore (e.g. the archive never arrived).
 */
export async function rollbackInPlace(
  source: LazyHost,
  m: LazyMigration,
  a: { container: string; imagesDir: string; keepDir?: string; restoreExtra?: readonly string[]; globalFlags?: readonly string[]; timeoutMs?: number },
  proof: AbortResult | { destinationNeverRestored: true },
): Promise<void> {
  if ('removed' in proof && !proof.removed) throw new PostCopyError(`not restoring "${a.container}" on the source: its copy on the destination could not be removed`, { code: 'POSTCOPY_DESTINATION_ALIVE' });
  const podman = source.podman ?? ['podman'];
  await stopPageServer(source.runner, m);
  if (a.keepDir) await putBackWholeDump(source.runner, a.imagesDir, a.keepDir);
  await must(source.runner, [...podman, ...(a.globalFlags ?? []), 'container', 'restore', ...(a.restoreExtra ?? []), a.container], { timeoutMs: a.timeoutMs });
  if (a.keepDir) await must(source.runner, ['rm', '-rf', '--', a.keepDir]);
}

/**
 * After the destination holds every page: stop serving, close the tunnel, put fs.pipe-max-size
 * back, and delete the kept dump. Checks the destination's word first, so no call order can
 * delete the last complete copy.
 */
export async function finishOnSource(source: CommandRunner, dest: CommandRunner, m: LazyFiles, target: SshTarget, keepDir: string | undefined): Promise<void> {
  const s = await readLazyCopy(dest, m);
  if (s.state !== 'complete') throw new PostCopyError(`not deleting the source's copy of migration ${m.migrationId}: the destination's page copy is ${s.state}`, { code: 'POSTCOPY_NOT_COMPLETE', permanent: true });
  await stopPageServer(source, m);
  await closePageTunnel(source, m, target);
  await restorePipeMaxSize(source, m);
  if (keepDir) await must(source, ['rm', '-rf', '--', keepDir]);
}

/** Removes one host's post-copy files of a migration (state, wrapper, logs); call last, on both hosts. */
export async function removeLazyFiles(runner: CommandRunner, m: LazyFiles): Promise<void> {
  await must(runner, ['rm', '-rf', '--', pathsOf(m).dir]);
}
