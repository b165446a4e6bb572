import { spawn, ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import IORedis from 'ioredis';
import { FerryClient } from '../../src/client';
import { loadConfig } from '../../src/config/load';
import { TERMINAL_STATES, MigrationRecord } from '../../src/engine/model';
import { REPO } from '../../test/support/bed';
import { now, sleep } from '../lib/clock';
import { must, run } from '../lib/shell';
import { summarize } from '../lib/stats';
import type { ItemResult } from './types';

const PORT = 6391;
const NOOP = resolve(REPO, 'bench', 'noop', 'podman');

async function startRedis(dir: string): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  const pid = join(dir, 'redis.pid');
  await must([
    'redis-server',
    '--daemonize',
    'yes',
    '--port',
    String(PORT),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'yes',
    '--dir',
    dir,
    '--pidfile',
    pid,
    '--maxmemory-policy',
    'noeviction',
    '--logfile',
    join(dir, 'redis.log'),
  ]);
  for (let i = 0; i < 50; i++) {
    const r = await run(['redis-cli', '-p', String(PORT), 'ping']);
    if (r.stdout.trim() === 'PONG') break;
    await sleep(100);
  }
  return async () => {
    const p = Number(readFileSync(pid, 'utf8').trim());
    if (p > 0) process.kill(p, 'SIGTERM');
    await sleep(300);
  };
}

function startWorker(cfgFile: string, host: string, log: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'ferry.js'), '--config', cfgFile, 'worker', '--host', host], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stderr?.on('data', (d: Buffer) => out.push(d));
  return new Promise((res, rej) => {
    let seen = '';
    child.stdout?.on('data', (d: Buffer) => {
      if (seen.length < 10_000) seen += d.toString();
      if (seen.includes('worker ready')) res(child);
    });
    child.on('exit', (c) => {
      writeFileSync(log, seen + Buffer.concat(out).toString());
      rej(new Error(`worker ${host} exited ${c}: ${seen.slice(-500)}`));
    });
  });
}

async function commandstats(r: IORedis): Promise<Map<string, number>> {
  const text = await r.info('commandstats');
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const x = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (x) m.set(x[1], Number(x[2]));
  }
  return m;
}

function delta(a: Map<string, number>, b: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) > 0) out[k] = v - (a.get(k) ?? 0);
  return out;
}

const sum = (o: Record<string, number>, skip: string[] = []) => Object.entries(o).reduce((s, [k, v]) => (skip.includes(k) ? s : s + v), 0);

/**
 * Item 7: `n` migrations a → b/c with podman replaced by bench/noop/podman (answers at
 * once from a state folder), real SSH between hosts, a private Redis on 127.0.0.1:6391
 * and three real `ferry worker` processes (in the root namespace: the loopback Redis is
 * only reachable there, and the no-op runtime needs no host). Measures submissions per
 * second, completions per second, and Redis commands per migration (INFO commandstats).
 */
export async function dispatch(n: number, concurrency: number, outDir: string, opts: { windowMs?: number; submitParallel?: number } = {}): Promise<ItemResult[]> {
  const windowMs = opts.windowMs ?? Infinity;
  const parallel = opts.submitParallel ?? 1;
  const dir = join(outDir, 'dispatch');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const bedCfg = JSON.parse(readFileSync('/var/lib/ferry-bed/ferry.json', 'utf8')) as { hosts: Record<string, unknown>[] };
  const hosts = bedCfg.hosts.map((h) => {
    const name = String(h.name);
    const state = join(dir, 'state', name);
    mkdirSync(state, { recursive: true });
    // workDir outside /var/lib/ferry: the worker runs in the root namespace, the SSH side in the host's; this path is the same file in both.
    return { ...h, podman: [NOOP, `--state=${state}`], workDir: join(dir, 'archives', name) };
  });
  const names = Array.from({ length: n }, (_, i) => `noop-${i}`);
  for (const name of names) writeFileSync(join(dir, 'state', 'a', name), 'running\n');
  const cfgFile = join(dir, 'ferry.json');
  writeFileSync(cfgFile, JSON.stringify({ redis: { url: `redis://127.0.0.1:${PORT}`, prefix: 'bench' }, hosts, log: { level: 'info' }, worker: { concurrency }, verify: { timeoutMs: 5000, intervalMs: 100 } }, null, 2), { mode: 0o600 });
  const stopRedis = await startRedis(join(dir, 'redis'));
  const workers: ChildProcess[] = [];
  let client: FerryClient | undefined;
  const redis = new IORedis({ port: PORT, host: '127.0.0.1' });
  try {
    for (const h of ['a', 'b', 'c']) workers.push(await startWorker(cfgFile, h, join(dir, `worker-${h}.log`)));
    client = new FerryClient(loadConfig({ file: cfgFile, env: {} }));
    await client.store.get('warm-up');
    await redis.config('RESETSTAT');
    const s0 = await commandstats(redis);
    const t0 = now();
    const ids: string[] = [];
    // `parallel` callers submitting at once, as a library user queueing a batch would.
    const c = client;
    for (let i = 0; i < names.length; i += parallel) {
      const chunk = names.slice(i, i + parallel);
      const recs = await Promise.all(chunk.map((name, j) => c.migrate({ container: name, from: 'a', to: (i + j) % 2 ? 'c' : 'b', probe: { kind: 'none' } })));
      ids.push(...recs.map((r) => r.id));
    }
    const tSubmitted = now();
    const s1 = await commandstats(redis);
    let polls = 0;
    let recs: (MigrationRecord | null)[] = [];
    for (;;) {
      polls++;
      const texts = await redis.mget(ids.map((id) => `bench:migration:${id}`));
      recs = texts.map((t) => (t ? (JSON.parse(t) as MigrationRecord) : null));
      if (recs.every((r) => r && TERMINAL_STATES.has(r.state))) break;
      // A large run is cut off after the window: its completion rate is what finished by then.
      if (now() - t0 > windowMs) break;
      await sleep(200);
    }
    const done = recs.filter((r): r is MigrationRecord => r !== null && TERMINAL_STATES.has(r.state));
    const tEnd = now();
    const stepsDone = recs.reduce((k, r) => k + (r?.history.filter((h) => h.finishedAt && h.finishedAt <= tEnd).length ?? 0), 0);
    const complete = done.length === n;
    const tDone = complete ? Math.max(...done.map((r) => r.finishedAt ?? 0)) : now();
    const s2 = await commandstats(redis);
    const submitCmds = delta(s0, s1);
    const allCmds = delta(s0, s2);
    allCmds.mget = (allCmds.mget ?? 0) - polls;
    allCmds.info = (allCmds.info ?? 0) - 1;
    const failed = done.filter((r) => r.state !== 'succeeded');
    // Where the time goes: each step's own duration, and the wait between one step's end and the next one's start (queue hand-over).
    const stepMs: Record<string, number[]> = {};
    const gapMs: number[] = [];
    for (const r of done) {
      let prevEnd = r.createdAt;
      for (const h of r.history) {
        if (h.finishedAt) (stepMs[h.step] ??= []).push(h.finishedAt - h.startedAt);
        gapMs.push(h.startedAt - prevEnd);
        prevEnd = h.finishedAt ?? prevEnd;
      }
    }
    const med = (v: number[]) => summarize(v).median;
    const submitPerS = n / ((tSubmitted - t0) / 1000);
    const completePerS = done.length / ((tDone - t0) / 1000);
    return [
      {
        item: 7,
        title: `Dispatch of ${n} migrations with a no-op podman (${parallel} submitting at once, worker concurrency ${concurrency}): submissions per second`,
        goal: '≥ 500/s',
        ratio: { n: 1, median: submitPerS, min: submitPerS, max: submitPerS, values: [submitPerS] },
        met: (x) => x >= 500,
        details: {
          submittedPerS: Math.round(submitPerS),
          submitParallel: parallel,
          completedPerS: Math.round(completePerS * 10) / 10,
          stepsDonePerS: Math.round((stepsDone / ((tEnd - t0) / 1000)) * 10) / 10,
          workerConcurrency: concurrency,
          redisCommandsPerMigrationSubmit: Math.round((sum(submitCmds) / n) * 10) / 10,
          completedInRun: done.length,
          // Only exact when every migration finished (complete: true); otherwise in-flight ones inflate it.
          complete,
          redisCommandsPerMigrationTotal: Math.round((sum(allCmds, ['info']) / Math.max(1, done.length)) * 10) / 10,
          evalshaPerMigration: Math.round((((allCmds.evalsha ?? 0) + (allCmds.eval ?? 0)) / Math.max(1, done.length)) * 10) / 10,
          multiPerMigration: Math.round(((allCmds.multi ?? 0) / Math.max(1, done.length)) * 10) / 10,
          topCommands: Object.fromEntries(
            Object.entries(allCmds)
              .sort((a, b) => b[1] - a[1])
              .slice(0, 12),
          ),
          stepMedianMs: Object.fromEntries(Object.entries(stepMs).map(([k, v]) => [k, med(v)])),
          handOverMedianMs: med(gapMs),
          failed: failed.length,
          firstFailure: failed[0]?.error,
        },
        notes: ['The figure shown is submissions per second (FerryClient.migrate()); completions per second are in the details.'],
      },
    ];
  } finally {
    await client?.close();
    redis.disconnect();
    for (const w of workers) {
      if (w.exitCode !== null || w.signalCode !== null) continue;
      const exited = new Promise((r) => w.once('exit', r));
      w.kill('SIGTERM');
      await exited;
    }
    await stopRedis();
  }
}
