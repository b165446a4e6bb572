import { strict as assert } from 'node:assert';
import { loadConfig } from '../../src/config/load';
import type { MigrationRecord } from '../../src/engine/model';
import { BatchRunner } from '../../src/fleet/batchRunner';
import { BatchStore } from '../../src/fleet/batchStore';
import { HostQueues } from '../../src/queues';
import { createRedis, type RedisConnection } from '../../src/redis';
import { keys } from '../../src/store/keys';
import { MigrationStore } from '../../src/store/migrationStore';
import { makeConfig } from '../support/bed';

/**
 * A batch's window against the bed's real Redis and real queues, with no worker consuming
 * them: what the window does when a process stops between two of its steps. From the cold
 * read of c50ea7c.
 */
describe('a batch window across stopped processes', function () {
  this.timeout(30_000);
  let conn: RedisConnection;
  let other: RedisConnection;
  let queues: HostQueues;
  let prefix = '';

  afterEach(async () => {
    await queues.close();
    const left = await other.keys(`${prefix}:*`);
    if (left.length) await other.del(...left);
    conn.disconnect();
    other.disconnect();
  });

  /** A runner whose submissions wait at `gate` (if given) just before recording, as a slow process would. */
  function runner(gate?: Promise<void>) {
    const conf = loadConfig({ file: makeConfig().file, env: {} });
    prefix = conf.redis.prefix;
    conn = createRedis(conf);
    other = createRedis(conf);
    queues = new HostQueues(conf, conn);
    const store = new MigrationStore(conn, prefix);
    const batches = new BatchStore(conn, prefix);
    const isCordoned = async () => (await gate, false);
    return { store, batches, k: keys(prefix), run: new BatchRunner(batches, store, { config: conf, store, queues, isCordoned }) };
  }

  const items = [
    { container: 'web', from: 'a', to: 'b' },
    { container: 'db', from: 'a', to: 'b' },
  ];

  it('a cancel while an item is being submitted does not call the batch over while that migration lives', async () => {
    let open: (() => void) | undefined;
    const gate = new Promise<void>((r) => (open = r));
    const { store, batches, run } = runner(gate);
    // The process creating the batch is held between its pick of item 0 and the record.
    const creating = run.create({ kind: 'batch', items, maxParallel: 1, perHost: 1 });
    let id = '';
    for (let i = 0; i < 100 && !id; i++) {
      id = (await batches.list())[0]?.id ?? '';
      if (!id) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(id, 'the batch was created');
    const cancelled = await run.cancel(id, () => Promise.reject(new Error('nothing to cancel yet')));
    open?.();
    const b = await creating;
    const rec = await store.get(b.items[0].migrationId);
    const now = await batches.get(id);
    if (rec?.state === 'queued') {
      // The item was submitted after all: the batch waits for it, it does not report it gone.
      assert.equal(now?.state, 'running', `batch ${now?.state} while ${rec.id} is ${rec.state}`);
      assert.deepEqual(await batches.running(id), ['0|a|b']);
    } else {
      assert.equal(now?.state, 'cancelled');
    }
    assert.equal(cancelled?.cancelRequested, true);
    assert.equal(await store.get(b.items[1].migrationId), null, 'the queued item never started');
  });

  it('reconcile frees the slot of a migration whose end was never reported, and starts the next item', async () => {
    const { store, batches, run, k } = runner();
    const b = await run.create({ kind: 'batch', items, maxParallel: 1, perHost: 1 });
    const first = (await store.get(b.items[0].migrationId)) as MigrationRecord;
    assert.equal(first.state, 'queued');
    assert.equal(await store.get(b.items[1].migrationId), null, 'one at a time');
    // Its worker ended it, then died before telling the batch.
    await other.set(k.migration(first.id), JSON.stringify({ ...first, state: 'succeeded', finishedAt: Date.now() }));
    await run.reconcileAll({ graceMs: 30_000 });
    assert.equal((await store.get(b.items[1].migrationId))?.state, 'queued', 'the next item started');
    assert.deepEqual(await batches.running(b.id), ['1|a|b']);
  });

  it('reconcile leaves a recordless pick to its process for the grace period, then submits it', async () => {
    const { store, batches, run } = runner();
    const b = await run.create({ kind: 'batch', items: items.slice(0, 1), maxParallel: 1, perHost: 1 });
    // As if the process that picked the item had died before recording it.
    await other.del(keys(prefix).migration(b.items[0].migrationId));
    await run.reconcileAll({ graceMs: 300 });
    assert.equal(await store.get(b.items[0].migrationId), null, 'not yet: it may still be on its way');
    await new Promise((r) => setTimeout(r, 400));
    await run.reconcileAll({ graceMs: 300 });
    assert.equal((await store.get(b.items[0].migrationId))?.state, 'queued');
    assert.deepEqual(await batches.running(b.id), ['0|a|b']);
  });
});
