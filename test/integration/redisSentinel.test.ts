import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FerryClient } from '../../src/client';
import { bed, containerState, readCounter, removeContainers, runCounter, startWorker, stopWorkers, uid, variant, WorkerProc } from '../support/bed';
import { clientFor, counterAt, faultConfig, podmanWrapper, rewrite, sleep, Watch } from '../support/faults';
import { SentinelSet, startSentinelSet } from '../support/redisSentinel';

/**
 * Ferry on Redis Sentinel (master, replica, one sentinel of the test's own): the master
 * fails over to the replica while a migration runs, and the migration still ends with the
 * container on the destination, its memory intact.
 */
describe('Redis Sentinel: failover during a migration', function () {
  this.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sentinel-'));
  const password = randomBytes(12).toString('hex');
  let set: SentinelSet | undefined;
  let cfg: ReturnType<typeof faultConfig>;
  let workers: WorkerProc[] = [];
  let client: FerryClient | undefined;
  const name = `sn-${uid()}`;

  before(async () => {
    set = await startSentinelSet(bed().redis.host, password, dir);
    const sentinel = { name: set.name, sentinels: [set.sentinel], password };
    cfg = rewrite(faultConfig(), (c) => (c.redis = { ...(c.redis as Record<string, unknown>), password, sentinel }));
    // The restore on b starts 6 s late, so the migration is still under way when the
    // sentinel's switch lands: a quick migration could otherwise end before the failover does.
    const slowRestore = variant(cfg, { b: { podman: [podmanWrapper({ match: 'restore', sleepS: 6, when: 'before' })] } });
    workers = [await startWorker('a', cfg), await startWorker('b', slowRestore)];
    client = clientFor(cfg);
    runCounter('a', name);
  });

  after(async () => {
    await stopWorkers(workers);
    await client?.close();
    removeContainers([name]);
    await set?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the master changes mid-migration; the container still arrives once, counting on', async () => {
    const s = set as SentinelSet;
    const c = client as FerryClient;
    const before = await counterAt('a', name);
    const firstMaster = s.master();
    const rec0 = await c.migrate({ container: name, from: 'a', to: 'b', probe: { kind: 'exec', argv: ['cat', '/tmp/count'] } });
    const watch = new Watch(c, rec0.id);
    await watch.started('checkpoint');
    s.failover();
    // SENTINEL FAILOVER answers OK at once; the switch follows within seconds.
    let switchedAt = 0;
    for (let i = 0; i < 200 && !switchedAt; i++) {
      if (s.master() !== firstMaster) switchedAt = Date.now();
      else await sleep(100);
    }
    assert.ok(switchedAt, 'the sentinel promoted the replica within 20 s');
    const rec = await watch.final;
    assert.ok((rec.finishedAt ?? Infinity) > switchedAt, 'the switch came while the migration ran');
    assert.equal(rec.state, 'succeeded', rec.error);
    assert.equal(containerState('b', name), 'running');
    assert.equal(containerState('a', name), null);
    const after = readCounter('b', name);
    assert.equal(after.token, before.token);
    assert.ok(after.count > before.count, `counter went on: ${before.count} -> ${after.count}`);
  });
});
