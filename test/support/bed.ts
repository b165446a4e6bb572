import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type MigrationRecord, TERMINAL_STATES } from '../../src/engine/model';

/** Facts the bed (scripts/bed.sh) wrote about itself. */
export interface BedInfo {
  dir: string;
  bridgeAddress: string;
  image: string;
  redis: { host: string; port: number; password: string };
  ssh: { key: string; wrongKey: string; knownHosts: string };
  /** `bedName`: the host's own name in the bed, where a lane shows it under another (laneHosts). */
  hosts: { name: string; bedName?: string; address: string; netns: string; mountns: string; veth: string }[];
}

export const REPO = resolve(__dirname, '..', '..', '..');
export const OUTPUT = join(REPO, 'test-output');
const BED_DIR = process.env.FERRY_BED_DIR ?? '/var/lib/ferry-bed';

export function bed(): BedInfo {
  const file = join(BED_DIR, 'bed.json');
  if (!existsSync(file)) throw new Error(`no test bed at ${BED_DIR}: run \`bash scripts/bed.sh up\` first (npm test does it)`);
  const info = JSON.parse(readFileSync(file, 'utf8')) as BedInfo;
  return { ...info, hosts: laneView(info.hosts).map((v) => ({ ...v.host, bedName: v.bedName })) };
}

/**
 * The bed hosts this process's tests see, under the names the tests use. scripts/test.sh runs
 * the suite in lanes side by side, each on hosts of its own that its tests know as a, b, c, d:
 * FERRY_TEST_HOSTS="a=e b=f c=g d=h". Unset: every bed host under its own name.
 */
function laneView<T extends { name: string }>(hosts: T[]): { host: T; bedName: string }[] {
  const spec = process.env.FERRY_TEST_HOSTS?.trim();
  if (!spec) return hosts.map((host) => ({ host, bedName: host.name }));
  return spec.split(/\s+/).map((pair) => {
    const [name, real] = pair.split('=');
    const h = hosts.find((x) => x.name === real);
    if (!name || !h) throw new Error(`FERRY_TEST_HOSTS: "${pair}" names no host of the bed (it has ${hosts.map((x) => x.name).join(', ')})`);
    return { host: { ...h, name }, bedName: h.name };
  });
}

/** Ferry's host entries as this lane names them (nothing added: the config schema takes no extra field). */
export function laneHosts<T extends { name: string }>(hosts: T[]): T[] {
  return laneView(hosts).map((v) => v.host);
}

/** A bed host's own folder ($BED/hosts/<its bed name>): its sshd files and its storage's bind sources. */
export function hostDir(name: string): string {
  const h = hostInfo(name);
  return join(bed().dir, 'hosts', h.bedName ?? h.name);
}

export function hostInfo(name: string) {
  const h = bed().hosts.find((x) => x.name === name);
  if (!h) throw new Error(`bed has no host ${name}`);
  return h;
}

function nsArgs(host: string): string[] {
  const h = hostInfo(host);
  return [`--mount=${h.mountns}`, `--net=${h.netns}`];
}

/** Runs a command inside a bed host (its mount and network namespace); no shell. */
export function onHost(host: string, argv: string[], opts: { input?: string } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', [...nsArgs(host), ...argv], { encoding: 'utf8', input: opts.input, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function podmanOn(host: string, ...args: string[]) {
  return onHost(host, ['podman', ...args]);
}

export function mustPodman(host: string, ...args: string[]): string {
  const r = podmanOn(host, ...args);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} on ${host} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A short unique suffix, so tests never trip over each other's leftovers. */
export function uid(): string {
  return `${Date.now().toString(36).slice(-5)}${randomBytes(2).toString('hex')}`;
}

export function runHttpd(host: string, name: string, port: number): void {
  mustPodman(host, 'run', '-d', '--name', name, '-p', `${port}:80`, bed().image, '/bin/httpd', '-f', '-p', '80', '-h', '/www');
}

/** A shell loop that keeps a random token and a counter in memory and writes both out. */
// Written to a temporary file and renamed, so a reader never sees a half-written count.
export const COUNTER_SCRIPT = 'tok=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$tok $i" > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done';

export function runCounter(host: string, name: string): void {
  mustPodman(host, 'run', '-d', '--name', name, bed().image, 'sh', '-c', COUNTER_SCRIPT);
}

export function readCounter(host: string, name: string): { token: string; count: number } {
  let out = '';
  for (let i = 0; i < 5; i++) {
    out = mustPodman(host, 'exec', name, 'cat', '/tmp/count');
    const [token, count] = out.split(' ');
    if (token && Number.isInteger(Number(count))) return { token, count: Number(count) };
  }
  throw new Error(`counter ${name} on ${host} reads ${JSON.stringify(out)}`);
}

export function containerState(host: string, name: string): string | null {
  const r = podmanOn(host, 'container', 'inspect', '--format', '{{.State.Status}}', name);
  return r.code === 0 ? r.stdout.trim() : null;
}

export function removeContainers(names: string[]): void {
  for (const h of bed().hosts) for (const n of names) podmanOn(h.name, 'rm', '-f', '-t', '0', n);
}

/** Ferry's archives (named after their migration, m-…) in a host's work dir; other files there are not ours. */
export function archivesOn(host: string): string[] {
  const r = onHost(host, ['ls', '-1', '/var/lib/ferry/archives']);
  return r.code === 0 ? r.stdout.split('\n').filter((f) => f.startsWith('m-')) : [];
}

/** What one migration left in a host's work dir (archive, partial archive, frozen marker): a user expects nothing. */
export function filesOfMigration(host: string, id: string): string[] {
  return archivesOn(host).filter((f) => f.split('.')[0] === id);
}

export async function httpGet(address: string, port: number, path = '/'): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(`http://${address}:${port}${path}`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return null;
  }
}

export interface TestConfig {
  file: string;
  prefix: string;
  config: Record<string, unknown>;
}

/**
 * A config file for one test: the bed's inventory with a fresh Redis prefix (so its
 * queues are its own), short retries, and any host patched for the fault under test.
 */
export function makeConfig(patch: { hosts?: Record<string, Record<string, unknown>>; extraHosts?: Record<string, unknown>[]; top?: Record<string, unknown> } = {}): TestConfig {
  mkdirSync(OUTPUT, { recursive: true });
  const base = JSON.parse(readFileSync(join(BED_DIR, 'ferry.json'), 'utf8')) as { redis: Record<string, unknown>; hosts: ({ name: string } & Record<string, unknown>)[] };
  const prefix = `ft-${uid()}`;
  const hosts = laneHosts(base.hosts).map((h) => ({ ...h, ...(patch.hosts?.[h.name] ?? {}) }));
  const config = {
    ...base,
    redis: { ...base.redis, prefix },
    hosts: [...hosts, ...(patch.extraHosts ?? [])],
    retry: { backoffMs: 200 },
    timeouts: { sshConnectMs: 4000 },
    verify: { timeoutMs: 8000 },
    worker: { lockDurationMs: 6000, stalledIntervalMs: 2000 },
    log: { level: 'debug' },
    ...(patch.top ?? {}),
  };
  const file = join(OUTPUT, `${prefix}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return { file, prefix, config };
}

/** The same test (same prefix, same queues) seen through a differently patched config: one host misconfigured. */
export function variant(cfg: TestConfig, hosts: Record<string, Record<string, unknown>>, opts: { without?: string[] } = {}): TestConfig {
  const config = JSON.parse(JSON.stringify(cfg.config)) as { hosts: Record<string, unknown>[] };
  config.hosts = config.hosts.filter((h) => !opts.without?.includes(h.name as string)).map((h) => ({ ...h, ...(hosts[h.name as string] ?? {}) }));
  const file = join(OUTPUT, `${cfg.prefix}-variant-${uid()}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return { file, prefix: cfg.prefix, config };
}

export interface WorkerProc {
  host: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `ferry worker` inside a bed host, as a real host would run it; logs go to test-output/. */
export function startWorker(host: string, cfg: TestConfig): Promise<WorkerProc> {
  const log = createWriteStream(join(OUTPUT, `${cfg.prefix}-worker-${host}.log`), { flags: 'a' });
  const child = spawn('nsenter', [...nsArgs(host), process.execPath, join(REPO, 'bin', 'ferry.js'), '--config', cfg.file, 'worker', '--host', host], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const proc: WorkerProc = {
    host,
    child,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  return new Promise((resolveReady, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('worker ready')) {
        child.stdout?.off('data', onData);
        resolveReady(proc);
      }
    };
    child.stdout?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`worker for ${host} exited with ${code} before it was ready: ${seen.slice(-2000)}`)));
  });
}

export async function startWorkers(hosts: string[], cfg: TestConfig): Promise<WorkerProc[]> {
  return Promise.all(hosts.map((h) => startWorker(h, cfg)));
}

export async function stopWorkers(workers: WorkerProc[]): Promise<void> {
  await Promise.all(workers.map((w) => w.stop()));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The id `ferry migrate` printed ("migration m-…: …"). */
export function migrationId(stdout: string): string {
  const id = /migration (m-\S+):/.exec(stdout)?.[1];
  if (!id) throw new Error(`no migration id in:\n${stdout}`);
  return id;
}

/** A migration's record, as `ferry status --json` shows it to a user. */
export async function record(cfg: TestConfig, id: string): Promise<MigrationRecord> {
  const s = await ferry(cfg, ['status', id, '--json']);
  if (s.code !== 0) throw new Error(`ferry status ${id} exited ${s.code}: ${s.stderr}`);
  return JSON.parse(s.stdout) as MigrationRecord;
}

/** The migration's record once it has ended, or as it stands after `ms` (for the assertions to say where). */
export async function endedRecord(cfg: TestConfig, id: string, opts: { ms?: number; everyMs?: number } = {}): Promise<MigrationRecord> {
  const until = Date.now() + (opts.ms ?? 240_000);
  let rec = await record(cfg, id);
  while (!TERMINAL_STATES.has(rec.state) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 1000));
    rec = await record(cfg, id);
  }
  return rec;
}

/** Runs the real `ferry` command, from the root namespace, as an operator would. */
export function ferry(cfg: TestConfig | null, args: string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((res) => {
    const argv = [join(REPO, 'bin', 'ferry.js'), ...(cfg ? ['--config', cfg.file] : []), ...args];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FERRY_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}
