import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUTPUT, startWorkers, stopWorkers, uid, WorkerProc } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, invariant, ownRedis, recordRun, runBigCounter, sleep, usingRedis, Watch } from '../support/faults';

/**
 * Redis restarted in the middle of a batch of migrations. Not the bed's Redis (others use
 * it): one of our own, with the settings docs/reliability.md asks for (AOF with
 * appendfsync always, noeviction, a password).
 */
export async function restartMidBatch(how: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const started = Date.now();
  const fault = how === 'SIGTERM' ? 'Redis restarted (SIGTERM, back 1 s later; AOF)' : 'Redis crashed (SIGKILL, back 1 s later; AOF appendfsync always)';
  const where = 'mid-batch: 3 migrations a→c at once, when the first checkpoint starts';
  const redis = await ownRedis();
  const cfg = usingRedis(faultConfig(), redis);
  const names = [0, 1, 2].map(() => `flt-${uid()}`);
  let workers: WorkerProc[] = [];
  const client = clientFor(cfg);
  try {
    workers = await startWorkers(['a', 'c'], cfg);
    for (const n of names) runBigCounter('a', n, 8);
    const before = await Promise.all(names.map((n) => counterAt('a', n, 3)));
    const recs = await Promise.all(names.map((n) => client.migrate({ container: n, from: 'a', to: 'c', probe: { kind: 'exec', argv: ['cat', '/tmp/count'] } })));
    const watches = recs.map((r) => new Watch(client, r.id));
    await Promise.race(watches.map((w) => w.started('checkpoint')));
    await redis.stop(how);
    await sleep(1000);
    await redis.start();
    const finals = await Promise.all(watches.map((w) => w.final));
    const verdicts = finals.map((rec, i) => invariant({ rec, name: names[i], before: before[i], workDir: cfg.workDir }));
    const problems = verdicts.flatMap((v, i) => v.problems.map((p) => `${names[i]}: ${p}`));
    for (const rec of finals) if (rec.state !== 'succeeded') problems.push(`${rec.id}: ${rec.state}: ${rec.error ?? ''}`);
    // The password must not have reached any log of this test's workers.
    for (const f of readdirSync(OUTPUT).filter((x) => x.startsWith(cfg.prefix) && x.endsWith('.log'))) {
      if (readFileSync(join(OUTPUT, f), 'utf8').includes(redis.password)) problems.push(`Redis password in ${f}`);
    }
    const outcome = `${finals.filter((r) => r.state === 'succeeded').length}/3 succeeded; ${verdicts.map((v) => v.outcome.split(';')[1]?.trim()).join(' | ')}`;
    recordRun({ fault, where, ok: problems.length === 0, outcome, note: problems.join('; '), ms: Date.now() - started });
    assert.deepEqual(problems, []);
  } catch (e: unknown) {
    if (!(e instanceof assert.AssertionError)) recordRun({ fault, where, ok: false, outcome: 'test error', note: e instanceof Error ? e.message : String(e), ms: Date.now() - started });
    throw e;
  } finally {
    await stopWorkers(workers);
    await client.close();
    await redis.stop();
    cleanHosts(names, cfg.workDir);
  }
}
