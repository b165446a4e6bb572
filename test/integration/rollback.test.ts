import { strict as assert } from 'node:assert';
import { archivesOn, containerState, ferry, readCounter, removeContainers, runCounter, startWorker, stopWorkers, TestConfig, uid, variant, WorkerProc, makeConfig } from '../support/bed';
import { describeExtended } from '../support/tier';

describe('a failed restore rolls back to the source', function () {
  this.timeout(180_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const name = `rb-${uid()}`;

  before(async () => {
    cfg = makeConfig();
    // Host b's own worker is misconfigured: its podman points at a runtime that does not
    // exist. Host a still reaches b's podman correctly over SSH, so preflight passes and
    // the failure comes where it hurts: at restore, after the container was frozen.
    const broken = variant(cfg, { b: { podman: ['podman', '--runtime', '/nonexistent/runc'] } });
    workers = [await startWorker('a', cfg), await startWorker('b', broken)];
    runCounter('a', name);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers([name]);
  });

  it('brings the container back on a with its memory, says why, and leaves nothing behind', async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const before = readCounter('a', name);
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'none']);
    assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /state:\s+failed-rolled-back/);
    assert.match(res.stdout, /restore failed on host b: .*no valid executable found for OCI runtime/);
    assert.match(res.stdout, /rollback\s+on a attempt 1: ok/);

    assert.equal(containerState('a', name), 'running', 'runs on a again');
    assert.equal(containerState('b', name), null, 'not on b');
    const after = readCounter('a', name);
    assert.equal(after.token, before.token, 'same process, not a restart');
    assert.ok(after.count > before.count, `counter continued on a: ${before.count} -> ${after.count}`);
    assert.deepEqual(archivesOn('a'), []);
    assert.deepEqual(archivesOn('b'), []);
  });
});

describeExtended('a destination whose inventory lacks the source rolls back, never drops the container', function () {
  this.timeout(180_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const name = `rb-inv-${uid()}`;

  before(async () => {
    cfg = makeConfig();
    // Seen for real: a worker started before a host joined the inventory refused the
    // restore step, and the container was left frozen on the source.
    const stale = variant(cfg, {}, { without: ['a'] });
    workers = [await startWorker('a', cfg), await startWorker('b', stale)];
    runCounter('a', name);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers([name]);
  });

  it('ends failed-rolled-back with the container running on a, its memory intact', async () => {
    await new Promise((r) => setTimeout(r, 800));
    const before = readCounter('a', name);
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'none']);
    assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /state:\s+failed-rolled-back/);
    assert.match(res.stdout, /not in this worker's inventory/);
    assert.equal(containerState('a', name), 'running');
    assert.equal(containerState('b', name), null);
    assert.equal(readCounter('a', name).token, before.token);
    assert.deepEqual(archivesOn('a'), []);
  });
});
