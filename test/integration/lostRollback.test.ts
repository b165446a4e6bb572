import { strict as assert } from 'node:assert';
import { criuConfigLines, criuWrapper } from '../../src/podman/criuConfig';
import { containerState, endedRecord, ferry, mustPodman, onHost, runCounter, startWorker, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, filesIn, holdQueue, sleep } from '../support/faults';

/**
 * Finding 25 in docs/reliability.md: a rollback brought the container back on the source while
 * the destination could not be reached, then Redis lost that rollback, and the record is back
 * at restore with the archive still on the destination. Played here by hand: b's queue is held
 * once the archive is there, and a's frozen copy is restored in place, as that rollback did
 * (the frozen marker stays, as when a rollback stops before removing it). b, let go, must ask a
 * and refuse to start a second copy; the migration rolls back with the container running on a.
 */
describe('a restore after a rollback the record lost (finding 25)', function () {
  this.timeout(180_000);
  let cfg: TestConfig & { workDir: string };
  let workers: WorkerProc[] = [];
  const name = `lr-${uid()}`;

  before(async () => {
    cfg = faultConfig({ top: { timeouts: { frozenMs: 90_000 } } });
    runCounter('a', name);
    workers = [await startWorker('a', cfg), await startWorker('b', cfg)];
  });

  after(async () => {
    await stopWorkers(workers);
    cleanHosts([name], cfg.workDir);
  });

  it('the destination asks the source, sees it running, and does not restore: one copy, on a, counting on', async () => {
    const before = await counterAt('a', name, 2);
    const held = await holdQueue(cfg, 'b');
    const client = clientFor(cfg);
    let id = '';
    try {
      const queued = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--probe', 'none']);
      assert.equal(queued.code, 0, queued.stderr);
      id = queued.stdout.trim();
      const end = Date.now() + 60_000;
      while ((await client.get(id))?.step !== 'restore') {
        if (Date.now() > end) throw new Error('the migration never reached restore');
        await sleep(100);
      }
      assert.equal(containerState('a', name), 'exited', 'frozen on a, its archive on b');
      // With the CRIU options Ferry's own rollback gives (the checkpoint closed TCP: so must this).
      const criu = criuWrapper(criuConfigLines('restore', { skipInFlight: true, tcpEstablished: false }));
      if (criu) assert.equal(onHost('a', criu.install).code, 0);
      mustPodman('a', ...(criu?.podmanFlags ?? []), 'container', 'restore', name);
      assert.equal(containerState('a', name), 'running');
    } finally {
      await held.resume();
      await client.close();
    }
    const rec = await endedRecord(cfg, id, { ms: 120_000 });
    assert.equal(rec.state, 'failed-rolled-back', rec.error);
    assert.match(rec.failure?.error ?? rec.error ?? '', /runs on host a again/);
    assert.equal(rec.restoreStartedAt, undefined, 'restore never started on b');
    assert.equal(containerState('a', name), 'running');
    assert.equal(containerState('b', name), null, 'b never had a copy');
    assert.deepEqual(
      filesIn('b', cfg.workDir).filter((f) => f.startsWith(id)),
      [],
      'the archive on b is gone',
    );
    const after = await counterAt('a', name, 2);
    assert.equal(after.token, before.token, 'the same process, not a restart');
    assert.ok(after.count > before.count, `counter went on: ${before.count} -> ${after.count}`);
  });
});
