import { strict as assert } from 'node:assert';
import { containerState, endedRecord, ferry, runCounter, startWorker, stopWorkers, TestConfig, uid, variant, WorkerProc } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, killWorker, podmanWrapper, sleep } from '../support/faults';

/**
 * Finding 21 in docs/reliability.md: the destination's worker marks restore started, then dies
 * and stays down. The frozen container's deadline must not stop at "restore started" (it stayed
 * frozen with no deadline at all), nor take it back while a restore may still run there: it
 * asks the destination again until the restore's time limit has passed and no attempt holds the
 * container there, and only then does the source take it back, memory and all.
 */
describe('a restore whose destination worker dies and stays down', function () {
  this.timeout(180_000);
  let cfg: TestConfig & { workDir: string };
  let workers: WorkerProc[] = [];
  const name = `od-${uid()}`;

  before(() => {
    // The deadline (15 s) comes well after restore started on b (about 2 s after the freeze
    // here), and before the restore's budget (8 s limit + 15 s for its kill) ends: the path under test.
    cfg = faultConfig({ top: { timeouts: { sshConnectMs: 4000, frozenMs: 15_000, step: { restore: 8000 } } } });
    runCounter('a', name);
  });

  after(async () => {
    await stopWorkers(workers);
    cleanHosts([name], cfg.workDir);
  });

  it('the source takes the container back once no restore can run there, and its memory went on', async () => {
    // b's podman sleeps before its restore: the worker is killed after marking restore started.
    const slowB = variant(cfg, { b: { podman: [podmanWrapper({ match: 'restore', sleepS: 120, when: 'before' })] } });
    workers = [await startWorker('a', cfg)];
    const b = await startWorker('b', slowB);
    const before = await counterAt('a', name, 2);
    const queued = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--probe', 'none']);
    assert.equal(queued.code, 0, queued.stderr);
    const id = queued.stdout.trim();
    const client = clientFor(cfg);
    try {
      const end = Date.now() + 60_000;
      while (!(await client.get(id))?.restoreStartedAt) {
        if (Date.now() > end) throw new Error('restore never started on b');
        await sleep(100);
      }
    } finally {
      await client.close();
    }
    await killWorker(b, true);
    const rec = await endedRecord(cfg, id, { ms: 120_000 });
    assert.equal(rec.state, 'failed-rolled-back', rec.error);
    assert.match(rec.failure?.error ?? '', /neither runs it nor works on it/);
    assert.equal(containerState('a', name), 'running');
    assert.notEqual(containerState('b', name), 'running');
    const after = await counterAt('a', name, 2);
    assert.equal(after.token, before.token, 'the same process, not a restart');
    assert.ok(after.count > before.count);
  });
});
