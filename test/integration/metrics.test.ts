import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { MigrationRecord } from '../../src/engine/model';
import { ferry, makeConfig, REPO, removeContainers, runHttpd, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import { FORWARD_STEPS } from '../../src/engine/steps';
import { clientFor, sleep } from '../support/faults';

// The forward chain as the step table defines it (src/engine/steps.ts).
const FORWARD: readonly string[] = FORWARD_STEPS;

/** Prometheus text format, as a map from `name{labels}` (labels as printed) to value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function metric(m: Map<string, number>, key: string): number {
  const v = m.get(key);
  assert.notEqual(v, undefined, `metric ${key} is exported`);
  return v as number;
}

async function record(cfg: TestConfig, id: string): Promise<MigrationRecord> {
  const r = await ferry(cfg, ['status', id, '--json']);
  return JSON.parse(r.stdout) as MigrationRecord;
}

describe('/metrics after real migrations', function () {
  this.timeout(110_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  let dash: ChildProcess | undefined;
  let url = '';
  // The dashboard makes a token per run when none is configured and prints it once.
  let auth: RequestInit = {};
  const names: string[] = [];

  before(async () => {
    cfg = makeConfig();
    workers = await startWorkers(['a', 'b'], cfg);
    // The dashboard is a process of its own: metrics must come from Redis, not from the workers' memory.
    const child = spawn(process.execPath, [join(REPO, 'bin', 'ferry.js'), '--config', cfg.file, 'dashboard', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    dash = child;
    url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString();
        const m = /dashboard listening on (http:\/\/\S+)/.exec(seen);
        const token = /\?token=([A-Za-z0-9_-]+)/.exec(seen)?.[1];
        if (m && token) {
          auth = { headers: { Authorization: `Bearer ${token}` } };
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => reject(new Error(`ferry dashboard exited ${code}: ${seen}`)));
    });
  });

  after(async () => {
    if (dash?.exitCode === null) {
      const exited = new Promise((r) => dash?.on('exit', r));
      dash.kill('SIGTERM');
      await exited;
    }
    await stopWorkers(workers);
    removeContainers(names);
  });

  it('counts outcomes, step durations, downtime, bytes, queue depth and workers', async () => {
    const name = `met-${uid()}`;
    names.push(name);
    runHttpd('a', name, 18000 + Math.floor(Math.random() * 1000));
    const ok = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--json']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const bad = await ferry(cfg, ['migrate', `nosuch-${uid()}`, '--from', 'a', '--to', 'b', '--wait', '--json', '--probe', 'none']);
    assert.equal(bad.code, 1, 'a migration of a container that does not exist fails');
    // Host c has no worker: this one waits in host-c's queue.
    const waiting = await ferry(cfg, ['migrate', `idle-${uid()}`, '--from', 'c', '--to', 'a']);
    assert.equal(waiting.code, 0, waiting.stderr);

    const okRec = JSON.parse(ok.stdout.trim().split('\n').pop() as string) as MigrationRecord;
    const badRec = JSON.parse(bad.stdout.trim().split('\n').pop() as string) as MigrationRecord;
    assert.equal((await record(cfg, okRec.id)).state, 'succeeded');
    // A migration's record ends within its last job, a moment before BullMQ files that job as
    // done: wait for host a's queue to be idle (its last jobs, cleanup and the failed
    // preflight, ran there) so the scrape below sees it so.
    const client = clientFor(cfg);
    try {
      const busy = async () => Object.values(await client.queues.get('a').getJobCounts('active', 'waiting', 'prioritized')).reduce((x, y) => x + y, 0);
      for (let i = 0; i < 300 && (await busy()) > 0; i++) await sleep(100);
    } finally {
      await client.close();
    }

    const res = await fetch(`${url}/metrics`, auth);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const m = parseMetrics(await res.text());

    assert.equal(metric(m, 'ferry_migrations_total{outcome="succeeded"}'), 1);
    assert.equal(metric(m, 'ferry_migrations_total{outcome="failed"}'), 1);
    assert.equal(metric(m, 'ferry_migrations_total{outcome="failed-rolled-back"}'), 0);
    assert.equal(metric(m, 'ferry_migrations_active{state="queued"}'), 1);

    for (const step of FORWARD) {
      const h = okRec.history.filter((x) => x.step === step && x.ok);
      assert.equal(h.length, 1, `${step} ran once`);
      const seconds = ((h[0].finishedAt as number) - h[0].startedAt) / 1000;
      assert.equal(metric(m, `ferry_step_duration_seconds_count{step="${step}",outcome="ok"}`), 1, step);
      assert.ok(Math.abs(metric(m, `ferry_step_duration_seconds_sum{step="${step}",outcome="ok"}`) - seconds) < 1e-6, `${step} took ${seconds} s`);
      assert.equal(metric(m, `ferry_step_duration_seconds_bucket{le="+Inf",step="${step}",outcome="ok"}`), 1);
    }
    const failedPreflights = badRec.history.filter((x) => x.step === 'preflight' && x.ok === false).length;
    assert.ok(failedPreflights >= 1);
    assert.equal(metric(m, 'ferry_step_duration_seconds_count{step="preflight",outcome="failed"}'), failedPreflights);
    assert.equal(metric(m, 'ferry_step_duration_seconds_count{step="rollback",outcome="ok"}'), 0);

    const downtime = ((okRec.answeredAt as number) - (okRec.frozenAt as number)) / 1000;
    assert.equal(metric(m, 'ferry_downtime_seconds_count'), 1);
    assert.ok(Math.abs(metric(m, 'ferry_downtime_seconds_sum') - downtime) < 1e-6);
    assert.ok((okRec.bytesTransferred ?? 0) > 0);
    assert.equal(metric(m, 'ferry_bytes_transferred_total'), okRec.bytesTransferred);

    assert.equal(metric(m, 'ferry_workers_alive{host="a"}'), 1);
    assert.equal(metric(m, 'ferry_workers_alive{host="b"}'), 1);
    assert.equal(metric(m, 'ferry_workers_alive{host="c"}'), 0);
    // Step jobs carry a priority (later steps first), so BullMQ files them as "prioritized":
    // queue depth is waiting + prioritized.
    const depth = (q: string) => metric(m, `ferry_queue_jobs{queue="${q}",state="waiting"}`) + metric(m, `ferry_queue_jobs{queue="${q}",state="prioritized"}`);
    assert.equal(depth('host-c'), 1);
    assert.equal(depth('host-a'), 0);
    assert.equal(metric(m, 'ferry_queue_jobs{queue="host-a",state="active"}'), 0);
    assert.equal(metric(m, 'ferry_metrics_refresh_errors_total'), 0);

    // A second scrape says the same: values are rebuilt, not added up again.
    const again = parseMetrics(await (await fetch(`${url}/metrics`, auth)).text());
    assert.equal(metric(again, 'ferry_migrations_total{outcome="succeeded"}'), 1);
    assert.equal(metric(again, 'ferry_step_duration_seconds_count{step="transfer",outcome="ok"}'), 1);
    assert.equal(metric(again, 'ferry_bytes_transferred_total'), okRec.bytesTransferred);
    await ferry(cfg, ['cancel', waiting.stdout.trim()]);
  });
});
