import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { FerryClient } from '../../src/client';
import { createRedis } from '../../src/redis';
import { hostQueueName, urgentQueueName } from '../../src/queues';
import { loadConfig } from '../../src/config/load';
import type { MigrationEvent, MigrationRecord } from '../../src/engine/model';
import { TERMINAL_STATES } from '../../src/engine/model';
import { bed, containerState, hostDir, hostInfo, makeConfig, mustPodman, onHost, OUTPUT, podmanOn, readCounter, REPO, TestConfig, uid, WorkerProc } from './bed';

/**
 * Helpers of the fault suite (test/faults) and its CI subset: a config whose archives live in
 * folders of their own, real faults (kills, cut links, full disks, flipped bytes, a Redis of
 * our own to restart), and the one invariant every fault run ends with.
 */

export const HOSTS = ['a', 'b', 'c'] as const;

/** How many times each fault is injected; the CI subset runs each once. */
export const RUNS = Math.max(1, Number(process.env.FERRY_FAULT_RUNS ?? 1));

/**
 * makeConfig(), plus a work dir per test on every host: archive checks then see this test's
 * files only, and a tmpfs can be mounted there without touching anyone else's migrations.
 */
export function faultConfig(patch: Parameters<typeof makeConfig>[0] = {}): TestConfig & { workDir: string } {
  const cfg = makeConfig(patch);
  const workDir = `/var/lib/ferry/${cfg.prefix}`;
  const c = cfg.config as { hosts: Record<string, unknown>[] };
  c.hosts = c.hosts.map((h) => ({ ...h, workDir }));
  writeFileSync(cfg.file, JSON.stringify(c, null, 2), { mode: 0o600 });
  return { ...cfg, workDir };
}

/** Rewrites a config file with one more change (e.g. another Redis, another SSH port). */
export function rewrite<T extends TestConfig>(cfg: T, change: (c: Record<string, unknown>) => void): T {
  const c = JSON.parse(JSON.stringify(cfg.config)) as Record<string, unknown>;
  change(c);
  const file = join(OUTPUT, `${cfg.prefix}-${uid()}.json`);
  writeFileSync(file, JSON.stringify(c, null, 2), { mode: 0o600 });
  return { ...cfg, file, config: c };
}

export function clientFor(cfg: TestConfig): FerryClient {
  return new FerryClient(loadConfig({ file: cfg.file, env: {} }));
}

/**
 * Follows one migration's event stream; `when` resolves on the first matching event (past
 * or future), so a fault can be injected at a precise point of a step.
 */
export class Watch {
  readonly events: MigrationEvent[] = [];
  readonly final: Promise<MigrationRecord>;
  private waiters: { pred: (e: MigrationEvent) => boolean; resolve: (e: MigrationEvent) => void; reject: (e: Error) => void }[] = [];

  constructor(
    client: FerryClient,
    readonly id: string,
    timeoutMs = 240_000,
  ) {
    this.final = client.follow(id, (ev) => this.onEvent(ev), { timeoutMs });
    this.final.then(
      (rec) => this.failAll(new Error(`migration ${id} ended (${rec.state}) before the awaited event`)),
      (e: unknown) => this.failAll(e instanceof Error ? e : new Error(String(e))),
    );
  }

  private onEvent(ev: MigrationEvent): void {
    this.events.push(ev);
    for (const w of [...this.waiters]) {
      if (w.pred(ev)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(ev);
      }
    }
  }

  private failAll(e: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  when(pred: (e: MigrationEvent) => boolean): Promise<MigrationEvent> {
    const past = this.events.find(pred);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => this.waiters.push({ pred, resolve, reject }));
  }

  started(step: string): Promise<MigrationEvent> {
    return this.when((e) => e.type === 'step-started' && e.step === step);
  }

  done(step: string): Promise<MigrationEvent> {
    return this.when((e) => e.type === 'step-done' && e.step === step);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every descendant of a process, read from /proc (children first found, then theirs). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parent.get(ppid) ?? [];
      list.push(Number(d));
      parent.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop() as number;
    for (const c of parent.get(p) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/**
 * SIGKILL a worker. `tree` also kills every process it started (podman, runc, CRIU, ssh),
 * as systemd does to the whole unit; without it only node dies and its children run on.
 */
export async function killWorker(w: WorkerProc, tree: boolean): Promise<number[]> {
  const pid = w.child.pid;
  if (pid === undefined) throw new Error('worker has no pid');
  const kids = tree ? descendants(pid) : [];
  w.child.kill('SIGKILL');
  for (const k of kids) {
    try {
      process.kill(k, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await w.exited;
  return kids;
}

/**
 * A podman stand-in for one host's own worker: the real podman, with a delay before or after
 * one sub-command, or that sub-command failing. It makes a short step last long enough for a
 * kill to land inside it, or makes one podman operation fail as a broken runtime would.
 */
export function podmanWrapper(spec: { match: string; sleepS: number; when: 'before' | 'after' } | { failOn: string; message: string }): string {
  const file = join(OUTPUT, `podman-wrap-${uid()}.sh`);
  const arm =
    'failOn' in spec
      ? `  *" ${spec.failOn} "*) echo "Error: ${spec.message}" >&2; exit 125;;`
      : spec.when === 'before'
        ? `  *" ${spec.match} "*) sleep ${spec.sleepS}; exec podman "$@";;`
        : `  *" ${spec.match} "*) podman "$@"; rc=$?; sleep ${spec.sleepS}; exit $rc;;`;
  writeFileSync(file, `#!/bin/sh\n# Fault injection (test/support/faults.ts): real podman, one sub-command slowed or failing.\ncase " $* " in\n${arm}\nesac\nexec podman "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}

/** A counter container (see COUNTER_SCRIPT) that also carries `mb` MB of random data, so its archive is that big. */
export function runBigCounter(host: string, name: string, mb: number): void {
  const script = `dd if=/dev/urandom of=/tmp/blob bs=1048576 count=${mb} 2>/dev/null; tok=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$tok $i" > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done`;
  mustPodman(host, 'run', '-d', '--name', name, bed().image, 'sh', '-c', script);
}

/** Waits (by polling podman, not a clock) until the counter has counted at least `n`. */
export async function counterAt(host: string, name: string, n = 3): Promise<{ token: string; count: number }> {
  for (let i = 0; i < 300; i++) {
    const r = podmanOn(host, 'exec', name, 'cat', '/tmp/count');
    const [token, count] = r.stdout.trim().split(' ');
    if (r.code === 0 && token && Number(count) >= n) return { token, count: Number(count) };
    await sleep(200);
  }
  throw new Error(`counter ${name} on ${host} never reached ${n}`);
}

/** "600 root" style mode and owner of a path inside a bed host, or "missing". */
export function onHostStat(host: string, path: string): string {
  const r = onHost(host, ['stat', '-c', '%a %U', '--', path]);
  return r.code === 0 ? r.stdout.trim() : 'missing';
}

export function filesIn(host: string, dir: string): string[] {
  const r = onHost(host, ['ls', '-1A', dir]);
  return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

export interface Verdict {
  ok: boolean;
  outcome: string;
  problems: string[];
}

/**
 * The invariant every fault run must end with: the migration ended; the container runs on
 * exactly one host, the one its final state names, as the same process (same token, counter
 * went on); no other host holds a copy, running or not; no archive is left in any work dir.
 * `keptArchive` names the one host allowed an archive (needs-attention keeps it on purpose).
 */
export function invariant(opts: {
  rec: MigrationRecord;
  name: string;
  before: { token: string; count: number };
  workDir: string;
  keptArchive?: string;
  /** Another container that holds the same name on purpose; it must be there, untouched. */
  impostor?: { host: string; id: string };
  /**
   * A host where a copy that never ran may stay, if the record warns about it (podman could
   * not remove it: that host's disk is full). Reported in the outcome, not a problem.
   */
  strandedOn?: string;
}): Verdict {
  const { rec, name, before, workDir, impostor } = opts;
  const problems: string[] = [];
  if (!TERMINAL_STATES.has(rec.state)) problems.push(`migration not ended: ${rec.state}`);
  if (impostor) {
    const r = podmanOn(impostor.host, 'container', 'inspect', '--format', '{{.Id}} {{.State.Status}}', name);
    if (r.stdout.trim() !== `${impostor.id} running`) problems.push(`the other container named ${name} on ${impostor.host} was touched: ${r.stdout.trim() || 'gone'}`);
  }
  const states = HOSTS.filter((h) => h !== impostor?.host).map((h) => ({ host: h, state: containerState(h, name) }));
  const running = states.filter((s) => s.state === 'running').map((s) => s.host);
  const present = states.filter((s) => s.state !== null);
  if (running.length !== 1) problems.push(`container runs on ${running.length} hosts (${states.map((s) => `${s.host}=${s.state}`).join(' ')})`);
  let stranded = '';
  for (const s of present) {
    if (s.state === 'running') continue;
    const warned = s.host === opts.strandedOn && rec.warnings.some((w) => w.includes(`host ${s.host} keeps`) && w.includes('it never ran there'));
    if (warned) stranded = `; a ${s.state} copy stays on ${s.host}, warned`;
    else problems.push(`left behind on ${s.host}: a ${s.state} copy`);
  }
  const expected = rec.state === 'succeeded' ? rec.to : rec.from;
  if (running.length === 1 && running[0] !== expected) problems.push(`record says ${rec.state} but the container runs on ${running[0]}`);
  let counter = '';
  if (running.length === 1) {
    const after = readCounter(running[0], name);
    counter = `${before.count}→${after.count}`;
    if (after.token !== before.token) problems.push(`different process on ${running[0]} (token ${before.token} → ${after.token}): memory lost`);
    else if (after.count <= before.count) problems.push(`counter did not go on: ${counter}`);
  }
  for (const h of HOSTS) {
    const files = filesIn(h, workDir);
    if (files.length && h !== opts.keptArchive) problems.push(`archive files left on ${h}: ${files.join(',')}`);
  }
  const outcome = `${rec.state}; runs on ${running.join('+') || 'no host'}${counter ? `, counter ${counter}` : ''}${stranded}`;
  return { ok: problems.length === 0, outcome, problems };
}

const RESULTS = join(OUTPUT, 'fault-results.jsonl');

/** One line per fault run, read by test/faults/report.ts to write docs/reliability.md's table. */
export function recordRun(r: { fault: string; where: string; ok: boolean; outcome: string; note?: string; ms: number }): void {
  mkdirSync(OUTPUT, { recursive: true });
  appendFileSync(RESULTS, `${JSON.stringify({ ...r, at: new Date().toISOString() })}\n`);
}

/** Cleans a test's traces: containers by name on every host and the work dirs. */
export function cleanHosts(names: string[], workDir: string): void {
  // A worker killed at the end of a test can leave a child behind (a podman export writing
  // into its fifo, holding the container's lock, so podman ps stalls for later tests): every
  // process still naming this test's own work dir goes first. Hosts share one pid namespace.
  spawnSync('pkill', ['-KILL', '-f', '--', workDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')]);
  for (const h of HOSTS) {
    for (const n of names) {
      const id = podmanOn(h, 'inspect', '--format', '{{.Id}}', n).stdout.trim();
      podmanOn(h, 'rm', '-f', '-t', '0', n);
      // podman rm drops its record, not a container its runtime still runs (a killed restore).
      if (/^[0-9a-f]{64}$/.test(id)) onHost(h, ['runc', 'delete', '--force', id]);
    }
    onHost(h, ['rm', '-rf', '--', workDir]);
  }
}

// ---------- SSH: a private sshd per test, so cutting it cuts nobody else ----------

export interface PrivateSshd {
  host: string;
  port: number;
  knownHosts: string;
  proc: ChildProcess;
  configFile: string;
  /** Kills the listener and every sshd process it forked: live connections drop at once. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

function waitPort(host: string, port: number, open: boolean): Promise<void> {
  return (async () => {
    for (let i = 0; i < 100; i++) {
      const r = onHost(host, ['ss', '-Hltn', `sport = :${port}`]);
      if (r.stdout.trim().length > 0 === open) return;
      await sleep(100);
    }
    throw new Error(`port ${port} on ${host} never became ${open ? 'open' : 'closed'}`);
  })();
}

/**
 * A second sshd inside a bed host, on a port of its own, with the host's key (or `hostKey`);
 * a known_hosts file naming it ("[addr]:port") unless `trusted` is false.
 */
export async function privateSshd(host: string, opts: { hostKey?: string; trusted?: boolean } = {}): Promise<PrivateSshd> {
  const h = hostInfo(host);
  const port = 2200 + Math.floor(Math.random() * 700);
  const base = hostDir(host);
  const realKey = join(base, 'ssh_host_ed25519_key');
  const keyFile = opts.hostKey ?? realKey;
  const dir = join(OUTPUT, `sshd-${host}-${uid()}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const configFile = join(dir, 'sshd_config');
  const original = readFileSync(join(base, 'sshd_config'), 'utf8');
  writeFileSync(
    configFile,
    original
      .replace(/^ListenAddress .*$/m, `ListenAddress ${h.address}:${port}`)
      .replace(/^HostKey .*$/m, `HostKey ${keyFile}`)
      .replace(/^PidFile .*$/m, `PidFile ${join(dir, 'sshd.pid')}`),
    { mode: 0o600 },
  );
  const knownHosts = join(dir, 'known_hosts');
  const pub = readFileSync(`${realKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  writeFileSync(knownHosts, opts.trusted === false ? '' : `[${h.address}]:${port} ${pub}\n`, { mode: 0o600 });
  const s: PrivateSshd = {
    host,
    port,
    knownHosts,
    configFile,
    proc: undefined as unknown as ChildProcess,
    async start() {
      // -D: stays our child, so we know its pid and kill only what we started.
      this.proc = spawn('nsenter', [`--mount=${h.mountns}`, `--net=${h.netns}`, '/usr/sbin/sshd', '-D', '-f', configFile, '-E', join(dir, 'sshd.log')], { stdio: 'ignore' });
      await waitPort(host, port, true);
    },
    async kill() {
      const pid = this.proc.pid;
      if (pid === undefined) return;
      // Only sshd itself (listener and per-connection processes): connections reset at once.
      // The commands they ran get EOF and end on their own; SIGKILLing them could leave a
      // lock behind (root's bashrc runs `pyenv rehash`, whose lock file then blocks every
      // later remote shell for a minute: seen on the bed).
      const kids = descendants(pid).filter((k) => {
        try {
          return readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'sshd';
        } catch {
          return false;
        }
      });
      this.proc.kill('SIGKILL');
      for (const k of kids) {
        try {
          process.kill(k, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await waitPort(host, port, false);
    },
  };
  await s.start();
  return s;
}

/** Points one host of a config at a private sshd. */
export function viaSshd<T extends TestConfig>(cfg: T, s: PrivateSshd): T {
  return rewrite(cfg, (c) => {
    c.hosts = (c.hosts as Record<string, unknown>[]).map((h) => (h.name === s.host ? { ...h, ssh: { ...(h.ssh as Record<string, unknown>), port: s.port, knownHosts: s.knownHosts } } : h));
  });
}

/**
 * A scenario's `prepare` that gives the run a private sshd on `host`, stopped when the run
 * ends; `keep` hands it to the injector (which cuts or black-holes it).
 */
export function withPrivateSshd(host: string, keep: (s: PrivateSshd) => void) {
  return async <T extends TestConfig>(cfg: T, undo: (fn: () => unknown) => void): Promise<T> => {
    const s = await privateSshd(host);
    keep(s);
    undo(() => s.kill());
    return viaSshd(cfg, s);
  };
}

/** Drops every packet to a private sshd's port inside its host (a black hole, no RST); returns the undo. */
export function blackhole(s: PrivateSshd): () => void {
  const rule = ['INPUT', '-p', 'tcp', '--dport', String(s.port), '-j', 'DROP'];
  const r = onHost(s.host, ['iptables', '-I', ...rule]);
  if (r.code !== 0) throw new Error(`iptables: ${r.stderr}`);
  return () => {
    onHost(s.host, ['iptables', '-D', ...rule]);
  };
}

// ---------- Redis of our own, to restart without disturbing the shared bed Redis ----------

export interface OwnRedis {
  port: number;
  password: string;
  url: string;
  dir: string;
  proc: ChildProcess;
  start(): Promise<void>;
  /** SIGTERM: Redis rewrites nothing, flushes the AOF and exits, as a planned restart does. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function ownRedis(settings: Record<string, string> = {}): Promise<OwnRedis> {
  const port = 6400 + Math.floor(Math.random() * 500);
  const dir = join(OUTPUT, `redis-${port}-${uid()}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const password = `pw-${uid()}${uid()}`;
  const conf: Record<string, string> = {
    port: String(port),
    bind: `127.0.0.1 ${bed().bridgeAddress}`,
    requirepass: password,
    appendonly: 'yes',
    appendfsync: 'always',
    save: '""',
    'maxmemory-policy': 'noeviction',
    dir,
    daemonize: 'no',
    logfile: join(dir, 'redis.log'),
    ...settings,
  };
  const file = join(dir, 'redis.conf');
  writeFileSync(
    file,
    Object.entries(conf)
      .map(([k, v]) => `${k} ${v}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  const r: OwnRedis = {
    port,
    password,
    url: `redis://${bed().bridgeAddress}:${port}`,
    dir,
    proc: undefined as unknown as ChildProcess,
    async start() {
      this.proc = spawn('redis-server', [file], { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        const p = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '--no-auth-warning', '-a', password, 'ping'], { encoding: 'utf8' });
        if (p.stdout.trim() === 'PONG') return;
        await sleep(100);
      }
      throw new Error(`own redis on ${port} did not start`);
    },
    async stop(signal = 'SIGTERM') {
      const p = this.proc;
      if (p?.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((res) => p.once('exit', res));
      p.kill(signal);
      await gone;
    },
  };
  await r.start();
  return r;
}

export function usingRedis<T extends TestConfig>(cfg: T, r: OwnRedis): T {
  return rewrite(cfg, (c) => {
    c.redis = { ...(c.redis as Record<string, unknown>), url: r.url, password: r.password };
  });
}

/** A file under /var/lib/ferry inside a bed host, as seen from the root namespace (the host's bind source). */
export function hostFile(host: string, path: string): string {
  if (!path.startsWith('/var/lib/ferry/')) throw new Error(`${path} is not under /var/lib/ferry`);
  return join(hostDir(host), 'fs', 'var-lib-ferry', path.slice('/var/lib/ferry/'.length));
}

/** Corrupts one byte in the middle of a file (its complement, so it surely changes). */
export function flipByte(file: string): void {
  const buf = readFileSync(file);
  const at = Math.floor(buf.length / 2);
  buf[at] = buf[at] ^ 0xff;
  writeFileSync(file, buf);
}

/** Holds one host's queues (steps, and take-overs with rollback): the running step finishes, the next one waits until resume. */
export async function holdQueue(cfg: TestConfig, host: string): Promise<{ resume(): Promise<void> }> {
  const conf = loadConfig({ file: cfg.file, env: {} });
  const conn = createRedis(conf);
  const qs = [hostQueueName(host), urgentQueueName(host)].map((name) => new Queue(name, { connection: conn, prefix: conf.redis.prefix }));
  await Promise.all(qs.map((q) => q.pause()));
  let done = false;
  return {
    async resume() {
      if (done) return;
      done = true;
      await Promise.all(qs.map((q) => q.resume()));
      await Promise.all(qs.map((q) => q.close()));
      conn.disconnect();
    },
  };
}

/** Repository root, for tests that need the CLI entry point. */
export const FERRY_BIN = join(REPO, 'bin', 'ferry.js');
