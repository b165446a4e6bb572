import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { FerryClient } from '../../src/client';
import { loadConfig } from '../../src/config/load';
import type { MigrationRecord } from '../../src/engine/model';
import { TERMINAL_STATES } from '../../src/engine/model';
import { hostForStep } from '../../src/engine/steps';
import { hostQueueName } from '../../src/queues';
import { createRedis } from '../../src/redis';
import { bed, hostInfo, mustPodman, onHost, OUTPUT, podmanOn, REPO, TestConfig, uid } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, filesIn, ownRedis, OwnRedis, privateSshd, PrivateSshd, rewrite, runBigCounter, sleep, usingRedis, viaSshd, Watch } from '../support/faults';
import { ferryCli, GroupWorker, iptables, startGroupWorker } from '../support/nemesis';
import { BED_HOSTS, BedHost, describeFault, Fault, LOCK_MS, Plan, Role, STALLED_MS } from './plan';

/** Every run's record, one JSON line each. */
export const JSONL = join(OUTPUT, 'nemesis.jsonl');

/**
 * Which code a run tested: the commit, whether the tree had changes, and when this build was
 * compiled (the engine changes under the suite while it is developed).
 */
const BUILD = (() => {
  const git = (...a: string[]) => spawnSync('git', ['-C', REPO, ...a], { encoding: 'utf8' }).stdout.trim();
  const dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'src', 'jobs', 'workers') ? '+changes' : '';
  return `${git('rev-parse', '--short', 'HEAD')}${dirty} built ${statSync(__filename).mtime.toISOString()}`;
})();

export type Verdict = 'ok' | 'lost' | 'doubled' | 'state-lost' | 'stuck' | 'mismatch' | 'leftover' | 'submission-lost' | 'paused' | 'harness-error';
/**
 * Worst first: a run's verdict is the worst problem it has. `paused`: a migration that froze
 * nothing waits in a paused queue (a pause whose resume a Redis crash dropped); by design
 * (engine/repair.ts, repairPaused), not a failure, but told apart from `stuck`.
 */
const SEVERITY: Verdict[] = ['lost', 'doubled', 'state-lost', 'stuck', 'mismatch', 'leftover', 'submission-lost', 'paused', 'harness-error'];

export interface RunRecord {
  seed: number;
  mb: number;
  src: string;
  dst: string;
  moment: string;
  /** Whether the awaited event came, or the migration ended first. */
  momentHit: boolean;
  frozenMs?: number;
  memoryCopy?: string;
  faults: string[];
  faultKinds: string[];
  /** The final state of the migration (and of the second submission, when there was one). */
  outcome: string;
  outcome2?: string;
  verdict: Verdict;
  problems: string[];
  notes: string[];
  durationMs: number;
  ids: string[];
  /** Where the worker logs and records of a run that did not pass are kept. */
  evidence?: string;
  build: string;
  at: string;
}

export function planTitle(p: Plan): string {
  return `${p.mb ? `${p.mb}MB` : 'small'} ${p.memoryCopy ? `${p.memoryCopy} ` : ''}${p.src}->${p.dst}${p.frozenMs ? ` frozenMs ${p.frozenMs}` : ''} at ${p.moment.event} ${p.moment.step}+${p.moment.delayMs}ms: ${p.faults.map((f) => describeFault(f.fault)).join(', ')}`;
}

interface Found {
  host: string;
  id: string;
  name: string;
  state: string;
}

/** What podman on every bed host says about the container, by name or by its original ID. */
function look(name: string, fullId: string): Found[] {
  const out: Found[] = [];
  for (const h of BED_HOSTS) {
    // JSON: the template's {{.State}} is the human "Up 3 seconds ago", not podman's state.
    const r = podmanOn(h, 'ps', '-a', '--format', 'json');
    if (r.code !== 0) throw new Error(`podman ps on ${h}: ${r.stderr}`);
    const known = (JSON.parse(r.stdout || '[]') as { Id: string; Names?: string[]; State: string }[]).filter((x) => x.Names?.includes(name) || x.Id === fullId);
    for (const x of known) out.push({ host: h, id: x.Id, name: x.Names?.join(',') ?? '', state: x.State.toLowerCase() });
    // podman is not the only witness: a podman killed mid-restore leaves the container running
    // under its runtime, out of podman's sight. runc's own state says whether it runs.
    if (!known.some((x) => x.Id === fullId && x.State.toLowerCase() === 'running')) {
      const rt = onHost(h, ['runc', 'state', fullId]);
      const status = rt.code === 0 ? ((JSON.parse(rt.stdout) as { status?: string }).status ?? '') : '';
      if (status === 'running' || status === 'paused' || status === 'created') out.push({ host: h, id: fullId, name, state: 'runtime-only' });
    }
  }
  return out;
}

function readCount(host: string, id: string): { token: string; count: number } | null {
  for (let i = 0; i < 5; i++) {
    const r = podmanOn(host, 'exec', id, 'cat', '/tmp/count');
    const [token, count] = r.stdout.trim().split(' ');
    if (r.code === 0 && token && Number.isInteger(Number(count))) return { token, count: Number(count) };
  }
  return null;
}

async function poll<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch {
    return undefined;
  }
}

/** How much of the AOF's tail a Redis crash loses (appendfsync everysec: about a second). */
const AOF_LOSS_MS = 1000;

/**
 * Samples the size of a Redis's newest AOF file every 50 ms, so that after a SIGKILL the file
 * can be cut back to where it stood a moment earlier: what a host crash with everysec loses.
 * Sizes are read between Redis's writes, so the cut falls on a command boundary (and Redis
 * loads a truncated tail anyway: aof-load-truncated).
 */
function aofWatch(dir: string) {
  const samples: { at: number; file: string; size: number }[] = [];
  const newest = (): string | undefined => {
    try {
      const d = join(dir, 'appendonlydir');
      const num = (f: string) => Number(/\.(\d+)\.incr\.aof$/.exec(f)?.[1] ?? -1);
      const f = readdirSync(d)
        .filter((x) => x.endsWith('.incr.aof'))
        .sort((a, b) => num(a) - num(b))
        .pop();
      return f ? join(d, f) : undefined;
    } catch {
      return undefined;
    }
  };
  const timer = setInterval(() => {
    const file = newest();
    if (!file) return;
    try {
      samples.push({ at: Date.now(), file, size: statSync(file).size });
    } catch {
      return;
    }
    if (samples.length > 200) samples.shift();
  }, 50);
  return {
    /** Cuts the newest AOF back to its size `ms` ago; returns the bytes dropped. */
    rewind(ms: number): number {
      const file = newest();
      const then = [...samples].reverse().find((x) => x.file === file && x.at <= Date.now() - ms);
      if (!file || !then) return 0;
      const now = statSync(file).size;
      if (now <= then.size) return 0;
      truncateSync(file, then.size);
      return now - then.size;
    },
    stop: () => clearInterval(timer),
  };
}

export interface RunOptions {
  /** How long, after the faults, the migrations get to reach a final state before they count as stuck. */
  settleMs: number;
}

/** One nemesis run: set up, wait for the moment, inject, let it settle, check with podman, clean up. */
export async function runOne(plan: Plan, opts: RunOptions): Promise<RunRecord> {
  const started = Date.now();
  const name = `nem-${uid()}`;
  const evidence = join(OUTPUT, 'nemesis', `seed-${plan.seed}-${uid()}`);
  mkdirSync(evidence, { recursive: true });
  const undos: (() => unknown)[] = [];
  const notes: string[] = [];
  const problems: { verdict: Verdict; text: string }[] = [];
  const ids: string[] = [];
  /** When each id was acknowledged, and when Redis was crashed: a record lost with the AOF's tail is told apart. */
  const submittedAt = new Map<string, number>();
  const crashedAt: number[] = [];
  const recs = new Map<string, MigrationRecord | null>();
  const host: Record<Role, BedHost> = { src: plan.src, dst: plan.dst };
  const kinds = plan.faults.map((f) => f.fault.kind);
  const skew = new Map<string, string>();
  for (const { fault: f } of plan.faults) if (f.kind === 'skew') skew.set(host[f.role], f.offset);
  const workers = new Map<string, GroupWorker>();
  const extras: GroupWorker[] = [];
  let client: FerryClient | undefined;
  let redis: OwnRedis | undefined;
  let sshd: PrivateSshd | undefined;
  let workDir = '';
  const cfgFiles: string[] = [];
  let momentHit = false;
  let cfg: TestConfig & { workDir: string };
  let logN = 0;
  const start = async (h: string): Promise<GroupWorker> => startGroupWorker(h, cfg, join(evidence, `worker-${h}-${logN++}.log`), { skew: skew.get(h) });

  try {
    // A Redis of the run's own: it can crash or be cut off without touching anyone else on the bed.
    // Its port is drawn at random: another run may hold it, so draw again.
    for (let i = 0; !redis; i++) {
      try {
        redis = await ownRedis({ appendfsync: 'everysec' });
      } catch (e: unknown) {
        if (i >= 4) throw e;
      }
    }
    const r = redis;
    undos.push(() => r.stop('SIGKILL'));
    const aof = aofWatch(r.dir);
    undos.push(() => aof.stop());
    cfg = faultConfig({
      top: {
        retry: { backoffMs: 200, attempts: { rollback: 4, cleanup: 4 } },
        worker: { lockDurationMs: LOCK_MS, stalledIntervalMs: STALLED_MS },
        timeouts: { sshConnectMs: 4000, ...(plan.frozenMs ? { frozenMs: plan.frozenMs } : {}) },
      },
    });
    workDir = cfg.workDir;
    cfgFiles.push(cfg.file);
    cfg = usingRedis(cfg, r);
    cfgFiles.push(cfg.file);
    if (kinds.includes('partition-hosts')) {
      // The destination's SSH on a port of this run's own, so cutting it cuts nobody else.
      sshd = await privateSshd(plan.dst);
      const s = sshd;
      undos.push(() => s.kill());
      cfg = viaSshd(cfg, s);
      cfgFiles.push(cfg.file);
    }
    for (const w of await Promise.all(BED_HOSTS.map((h) => start(h)))) workers.set(w.host, w);
    runBigCounter(plan.src, name, plan.mb);
    const before = await counterAt(plan.src, name, 3);
    const fullId = mustPodman(plan.src, 'container', 'inspect', '--format', '{{.Id}}', name);
    client = clientFor(cfg);
    const c = client;
    const probe = { kind: 'exec' as const, argv: ['cat', '/tmp/count'] };
    const rec0 = await c.migrate({ container: name, from: plan.src, to: plan.dst, probe, memoryCopy: plan.memoryCopy });
    ids.push(rec0.id);
    submittedAt.set(rec0.id, Date.now());
    const watch = new Watch(c, rec0.id, 600_000);

    // Every id is read each time: one whose record a crash lost must not hide the others'
    // (seed 1130000 called a second submission that had succeeded "stuck: no record").
    const allEnded = async (): Promise<boolean> => {
      let ended = true;
      for (const id of ids) {
        const rec = await poll(() => c.get(id));
        if (rec !== undefined) recs.set(id, rec);
        if (!rec || !TERMINAL_STATES.has(rec.state)) ended = false;
      }
      return ended;
    };

    // The moment: the awaited event, or the end of the migration if it never comes.
    const m = plan.moment;
    let endedFirst = false;
    const stopAt = Date.now() + opts.settleMs;
    await Promise.race([
      // A step that reports no progress (verify, a skipped transfer) is hit at its end instead.
      watch
        .when((e) => e.step === m.step && (e.type === m.event || (m.event === 'progress' && e.type === 'step-done')))
        .then(
          () => (momentHit = true),
          () => (endedFirst = true),
        ),
      (async () => {
        while (!momentHit && !endedFirst && Date.now() < stopAt) {
          await sleep(500);
          if (await allEnded()) endedFirst = true;
        }
      })(),
    ]);
    if (!momentHit) notes.push(`moment missed (${endedFirst ? 'migration ended first' : 'not reached in time'})`);
    await sleep(m.delayMs);

    const inject = async (f: Fault): Promise<string> => {
      switch (f.kind) {
        case 'pause': {
          const w = workers.get(host[f.role]) as GroupWorker;
          w.group('SIGSTOP');
          undos.push(() => w.group('SIGCONT'));
          await sleep(f.holdMs);
          w.group('SIGCONT');
          return `paused ${w.host} ${f.holdMs}ms`;
        }
        case 'kill': {
          const h = host[f.role];
          await (workers.get(h) as GroupWorker).kill(f.tree);
          await sleep(f.downMs);
          workers.set(h, await start(h));
          return `killed ${h}${f.tree ? ' with its group' : ''}, restarted`;
        }
        case 'partition-redis': {
          const h = host[f.role];
          const a = bed().bridgeAddress;
          const p = String(r.port);
          const undo = iptables(h, [
            ['OUTPUT', '-d', a, '-p', 'tcp', '--dport', p, '-j', 'DROP'],
            ['INPUT', '-s', a, '-p', 'tcp', '--sport', p, '-j', 'DROP'],
          ]);
          undos.push(undo);
          await sleep(f.holdMs);
          undo();
          return `cut ${h} from redis ${f.holdMs}ms`;
        }
        case 'partition-hosts': {
          const s = sshd as PrivateSshd;
          const p = String(s.port);
          const srcAddr = hostInfo(plan.src).address;
          const dstAddr = hostInfo(plan.dst).address;
          const undo =
            f.side === 'src'
              ? iptables(plan.src, [
                  ['OUTPUT', '-d', dstAddr, '-p', 'tcp', '--dport', p, '-j', 'DROP'],
                  ['INPUT', '-s', dstAddr, '-p', 'tcp', '--sport', p, '-j', 'DROP'],
                ])
              : iptables(plan.dst, [
                  ['INPUT', '-s', srcAddr, '-p', 'tcp', '--dport', p, '-j', 'DROP'],
                  ['OUTPUT', '-d', srcAddr, '-p', 'tcp', '--sport', p, '-j', 'DROP'],
                ]);
          undos.push(undo);
          await sleep(f.holdMs);
          undo();
          return `cut ${plan.src}->${plan.dst} ssh ${f.holdMs}ms`;
        }
        case 'skew':
          return `${host[f.role]} ran with clock ${f.offset}`;
        case 'redis-crash': {
          // SIGKILL alone loses nothing Redis already wrote (the page cache keeps it); a host
          // crash loses what was not yet fsync'd, up to a second with everysec: cut that off.
          await r.stop('SIGKILL');
          crashedAt.push(Date.now());
          const lost = aof.rewind(AOF_LOSS_MS);
          await sleep(f.downMs);
          await r.start();
          return `redis SIGKILLed, last ${AOF_LOSS_MS}ms of AOF (${lost} bytes) dropped, back after ${f.downMs}ms`;
        }
        case 'double-submit': {
          const prefix = fullId.slice(0, f.idChars);
          try {
            const rec = await c.migrate({ container: prefix, from: plan.src, to: plan.third, probe, memoryCopy: plan.memoryCopy });
            ids.push(rec.id);
            submittedAt.set(rec.id, Date.now());
            return `second submission ${prefix} -> ${plan.third} accepted (${rec.id})`;
          } catch (e: unknown) {
            return `second submission ${prefix} -> ${plan.third} refused: ${(e instanceof Error ? e.message : String(e)).slice(0, 160)}`;
          }
        }
        case 'queue-admin': {
          const h = host[f.role];
          const conf = loadConfig({ file: cfg.file, env: {} });
          const conn = createRedis(conf);
          const q = new Queue(hostQueueName(h), { connection: conn, prefix: conf.redis.prefix });
          try {
            if (f.action === 'pause-resume') {
              await q.pause();
              await sleep(f.holdMs);
              await q.resume();
              return `queue ${h} paused ${f.holdMs}ms`;
            }
            // As a person in Bull Board would: pause the queue, look at what waits, act, resume
            // (without the pause, a step job is taken before anyone can click on it).
            await q.pause();
            try {
              const until = Date.now() + f.holdMs;
              let waiting = await q.getJobs(['waiting', 'prioritized', 'paused']);
              while (waiting.length === 0 && Date.now() < until) {
                await sleep(100);
                waiting = await q.getJobs(['waiting', 'prioritized', 'paused']);
              }
              const delayed = await q.getJobs(['delayed']);
              if (f.action === 'drain') {
                await q.drain(true);
                return `queue ${h} paused, drained (${[...waiting, ...delayed].map((j) => j.id).join(',') || 'nothing there'}), resumed`;
              }
              if (waiting.length === 0) return `queue ${h} paused, nothing waiting within ${f.holdMs}ms, resumed`;
              await waiting[0].remove();
              return `queue ${h} paused, job ${waiting[0].id} removed, resumed`;
            } finally {
              await q.resume();
            }
          } finally {
            await q.close();
            conn.disconnect();
          }
        }
        case 'cancel': {
          const out = await ferryCli(cfg, ['cancel', rec0.id]);
          return `cancel exited ${out.code}: ${(out.stdout + out.stderr).trim().split('\n')[0]?.slice(0, 120) ?? ''}`;
        }
        case 'second-worker': {
          const w = await start(host[f.role]);
          extras.push(w);
          return `second worker on ${w.host}`;
        }
        case 'second-installation': {
          const other = rewrite(cfg, (c) => {
            c.redis = { ...(c.redis as Record<string, unknown>), prefix: `${cfg.prefix}-other` };
          });
          // Not in cfgFiles: the evidence's config.json stays this installation's.
          undos.push(() => rmSync(other.file, { force: true }));
          const ws = await Promise.all([plan.src, plan.dst].map((h) => startGroupWorker(h, other, join(evidence, `worker-${h}-other-${logN++}.log`))));
          extras.push(...ws);
          return `second installation's workers on ${plan.src} and ${plan.dst}`;
        }
      }
    };
    await Promise.all(
      plan.faults.map(async ({ fault: f, afterMs }) => {
        await sleep(afterMs);
        try {
          notes.push(await inject(f));
        } catch (e: unknown) {
          notes.push(`${describeFault(f)}: harness error ${e instanceof Error ? e.message : String(e)}`);
        }
      }),
    );

    // Settle: every migration must end; then superseded attempts get time to do their worst.
    const deadline = Date.now() + opts.settleMs;
    let ended = await allEnded();
    while (!ended && Date.now() < deadline) {
      await sleep(1000);
      ended = await allEnded();
    }
    await sleep(LOCK_MS + 3000);
    await allEnded();

    const queuePaused = async (h: string): Promise<boolean> => {
      const conf = loadConfig({ file: cfg.file, env: {} });
      const conn = createRedis(conf);
      const q = new Queue(hostQueueName(h), { connection: conn, prefix: conf.redis.prefix });
      try {
        return await q.isPaused();
      } catch {
        return false;
      } finally {
        await q.close().catch(() => undefined);
        conn.disconnect();
      }
    };
    // The checker: podman on every host, and the counter; Ferry's records are not asked.
    for (const id of ids) {
      const rec = recs.get(id);
      // Acknowledged within the AOF tail a crash then dropped: Redis lost the submission
      // itself (appendfsync everysec; see README). Its container was never touched, which
      // the checks below still verify; anything else without a record is stuck.
      const at = submittedAt.get(id) ?? 0;
      const inLostTail = crashedAt.some((c) => at <= c && at >= c - AOF_LOSS_MS - 200);
      if (!rec)
        problems.push(
          inLostTail
            ? { verdict: 'submission-lost', text: `${id}: no record: acknowledged ${Math.max(...crashedAt.map((c) => c - at))}ms before a Redis crash that dropped the AOF's last ${AOF_LOSS_MS}ms` }
            : { verdict: 'stuck', text: `${id}: no record` },
        );
      else if (!TERMINAL_STATES.has(rec.state)) {
        const text = `${id}: still ${rec.state} (step ${rec.step ?? '?'}) after ${opts.settleMs}ms`;
        const held = !rec.frozenAt && rec.step ? await queuePaused(hostForStep(rec, rec.step)) : false;
        problems.push(held ? { verdict: 'paused', text: `${text}, nothing frozen, its queue on ${hostForStep(rec, rec.step ?? 'preflight')} paused` } : { verdict: 'stuck', text });
      }
    }
    const found = look(name, fullId);
    const hidden = found.filter((x) => x.state === 'runtime-only');
    const running = found.filter((x) => x.state === 'running');
    // Runs, but podman cannot see or stop it: beside another copy it is a double, alone a loss.
    for (const x of hidden) problems.push({ verdict: running.length > 0 || hidden.length > 1 ? 'doubled' : 'lost', text: `runs on ${x.host} outside podman's sight (runc holds it, podman does not)` });
    const where = found.map((x) => `${x.host}=${x.state}`).join(' ') || 'nowhere';
    if (running.length === 0) problems.push({ verdict: 'lost', text: `runs on no host (${where})` });
    if (running.length > 1) problems.push({ verdict: 'doubled', text: `runs on ${running.length} hosts (${where})` });
    for (const x of running) {
      const after = readCount(x.host, x.id);
      if (!after) problems.push({ verdict: 'state-lost', text: `counter unreadable on ${x.host}` });
      else if (after.token !== before.token) problems.push({ verdict: 'state-lost', text: `token ${before.token} -> ${after.token} on ${x.host}: memory lost` });
      else if (after.count < before.count) problems.push({ verdict: 'state-lost', text: `count went back ${before.count} -> ${after.count} on ${x.host}` });
      else notes.push(`counter ${before.count}->${after.count} on ${x.host}`);
    }
    for (const x of found.filter((y) => y.state !== 'running' && y.state !== 'runtime-only')) problems.push({ verdict: 'leftover', text: `a ${x.state} copy on ${x.host}` });
    const primary = recs.get(rec0.id);
    if (ids.length === 1 && primary && running.length === 1 && TERMINAL_STATES.has(primary.state) && primary.state !== 'needs-attention') {
      const expected = primary.state === 'succeeded' ? primary.to : primary.from;
      if (running[0].host !== expected) problems.push({ verdict: 'mismatch', text: `record says ${primary.state} but it runs on ${running[0].host}` });
    }
    const attention = [...recs.values()].some((x) => x?.state === 'needs-attention');
    for (const h of BED_HOSTS) {
      const files = filesIn(h, workDir);
      if (files.length && !attention) problems.push({ verdict: 'leftover', text: `archive files on ${h}: ${files.join(',')}` });
    }
  } catch (e: unknown) {
    problems.push({ verdict: 'harness-error', text: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  } finally {
    for (const u of undos.reverse()) {
      try {
        await u();
      } catch {
        // Best effort: every undo runs.
      }
    }
  }

  const verdict = SEVERITY.find((v) => problems.some((p) => p.verdict === v)) ?? 'ok';
  const state = (id: string | undefined) => {
    if (!id) return undefined;
    const rec = recs.get(id);
    return !rec ? 'no-record' : TERMINAL_STATES.has(rec.state) ? rec.state : `stuck (${rec.state})`;
  };
  const record: RunRecord = {
    seed: plan.seed,
    mb: plan.mb,
    src: plan.src,
    dst: plan.dst,
    moment: `${plan.moment.event} ${plan.moment.step} +${plan.moment.delayMs}ms`,
    frozenMs: plan.frozenMs,
    ...(plan.memoryCopy ? { memoryCopy: plan.memoryCopy } : {}),
    momentHit,
    faults: plan.faults.map((f) => `${describeFault(f.fault)}${f.afterMs ? ` (+${f.afterMs}ms)` : ''}`),
    faultKinds: kinds,
    outcome: state(ids[0]) ?? 'not submitted',
    outcome2: state(ids[1]),
    verdict,
    problems: problems.map((p) => `${p.verdict}: ${p.text}`),
    notes,
    durationMs: Date.now() - started,
    ids,
    build: BUILD,
    at: new Date().toISOString(),
  };
  if (verdict !== 'ok') {
    record.evidence = evidence;
    writeFileSync(join(evidence, 'records.json'), JSON.stringify([...recs.values()], null, 2));
    writeFileSync(join(evidence, 'run.json'), JSON.stringify(record, null, 2));
    if (cfgFiles.length) copyFileSync(cfgFiles[cfgFiles.length - 1], join(evidence, 'config.json'));
  }

  // Clean up: workers (a stopped one is continued so it dies), containers, work dirs, Redis.
  await Promise.all([...workers.values(), ...extras].map((w) => w.kill(true)));
  await client?.close().catch(() => undefined);
  if (workDir) cleanHosts([name], workDir);
  if (redis) {
    await redis.stop('SIGKILL');
    rmSync(redis.dir, { recursive: true, force: true });
  }
  for (const f of cfgFiles) rmSync(f, { force: true });
  if (verdict === 'ok') rmSync(evidence, { recursive: true, force: true });
  mkdirSync(OUTPUT, { recursive: true });
  appendFileSync(JSONL, `${JSON.stringify(record)}\n`);
  return record;
}

/** The table for docs/reliability.md: per fault kind (a run counts for each kind it had), and all runs. */
export function summaryTable(runs: RunRecord[]): string {
  const cols: Verdict[] = ['lost', 'doubled', 'stuck', 'state-lost', 'mismatch', 'leftover', 'submission-lost', 'paused', 'harness-error'];
  const kinds = [...new Set(runs.flatMap((r) => r.faultKinds))].sort();
  const row = (label: string, rs: RunRecord[]) => `| ${label} | ${rs.length} | ${rs.filter((r) => r.verdict === 'ok').length} | ${cols.map((c) => rs.filter((r) => r.problems.some((p) => p.startsWith(`${c}:`))).length).join(' | ')} |`;
  return [
    `| fault mix | runs | ok | ${cols.join(' | ')} |`,
    `|---|---|---|${cols.map(() => '---').join('|')}|`,
    ...kinds.map((k) =>
      row(
        k,
        runs.filter((r) => r.faultKinds.includes(k)),
      ),
    ),
    row('**all**', runs),
  ].join('\n');
}
