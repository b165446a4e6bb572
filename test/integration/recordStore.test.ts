import { strict as assert } from 'node:assert';
import { loadConfig } from '../../src/config/load';
import { RECORD_VERSION, type MigrationRecord } from '../../src/engine/model';
import { createRedis, type RedisConnection } from '../../src/redis';
import { keys } from '../../src/store/keys';
import { MigrationStore } from '../../src/store/migrationStore';
import { FerryClient } from '../../src/client';
import { BatchStore, newBatchId } from '../../src/fleet/batchStore';
import { submitMigration } from '../../src/engine/submit';
import type { HostQueues } from '../../src/queues';
import type { BatchRecord } from '../../src/fleet/model';
import { makeConfig } from '../support/bed';

/**
 * The record store against the bed's real Redis, at the moment a connection drops: ioredis
 * resends what was not answered, on a new connection.
 */
describe('record updates across a dropped Redis connection', function () {
  this.timeout(30_000);
  const conns: RedisConnection[] = [];
  let prefix = '';

  afterEach(async () => {
    if (conns[1]) {
      const left = await conns[1].keys(`${prefix}:*`);
      if (left.length) await conns[1].del(...left);
    }
    for (const c of conns.splice(0)) c.disconnect();
  });

  /** A fresh prefix, the connection under test (`conn`) and a second one that acts meanwhile (`other`). */
  function connect() {
    const conf = loadConfig({ file: makeConfig().file, env: {} });
    prefix = conf.redis.prefix;
    const conn = createRedis(conf);
    const other = createRedis(conf);
    conns.push(conn, other);
    return { conf, conn, other, k: keys(prefix) };
  }

  /** A queued record written through the store on `conn`, and its key. */
  async function stored(conn: RedisConnection) {
    const store = new MigrationStore(conn, prefix);
    const id = `m-test-${Date.now().toString(36)}`;
    await store.create(record(id));
    return { store, id, key: keys(prefix).migration(id) };
  }

  /**
   * Makes `method` of `conn` run each command twice and answer the second reply: what Redis
   * sees when a command ran, its reply was lost with the connection, and ioredis resent it.
   */
  function resendEach(conn: RedisConnection, method: 'eval' | 'set') {
    const target = conn as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = target[method].bind(conn);
    target[method] = async (...args: unknown[]) => {
      await original(...args);
      return original(...args);
    };
  }

  function record(id: string): MigrationRecord {
    const now = Date.now();
    return { v: RECORD_VERSION, id, container: 'web', from: 'a', to: 'b', state: 'queued', step: 'preflight', createdAt: now, updatedAt: now, probe: { kind: 'none' }, history: [], warnings: [] };
  }

  // Nemesis seed 1530027: a Redis crash dropped a just-submitted record; the worker's
  // start-of-step write, resent after the reconnect without its WATCH, brought it back as
  // `running` with no job and no index entry, and the migration never ended.
  it('a write resent after the record vanished does not bring it back', async () => {
    const { conn, other } = connect();
    const { store, id, key } = await stored(conn);
    let lostMeanwhile: Promise<number> | undefined;
    const update = store.update(id, (r) => {
      // Between the read and the write: Redis loses the record, and this connection drops
      // (ioredis reconnects and sends the write on the new one).
      lostMeanwhile = other.del(key);
      conn.disconnect(true);
      return { ...r, state: 'running' };
    });
    await assert.rejects(update, (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
    assert.equal(await lostMeanwhile, 1);
    assert.equal(await other.get(key), null, 'the lost record stays lost');
  });

  it('a write resent after another writer changed the record does not overwrite it', async () => {
    const { conn, other } = connect();
    const { store, id, key } = await stored(conn);
    let first = true;
    const updated = await store.update(id, (r) => {
      if (first) {
        first = false;
        // Another attempt writes in between; this connection drops before its own write.
        void other.set(key, JSON.stringify({ ...r, state: 'rolling-back' }));
        conn.disconnect(true);
      }
      return r.state === 'rolling-back' ? null : { ...r, state: 'running' };
    });
    assert.equal(updated.state, 'rolling-back', 'the update saw the other write and left it');
    assert.equal((JSON.parse((await other.get(key)) ?? '{}') as MigrationRecord).state, 'rolling-back');
  });

  // From a cold read of 00e6b67: the update's callback runs again when the record changed
  // meanwhile, and cancel kept the first run's "ended" (queued) after the second saw a running
  // migration: it released the running migration's locks.
  it("a cancel that loses the race to a step's start leaves the running migration its locks", async () => {
    const { conf, conn, other, k } = connect();
    const client = new FerryClient(conf, conn);
    try {
      const rec = await client.migrate({ container: 'web', from: 'a', to: 'b', probe: { kind: 'none' } });
      const update = client.store.update.bind(client.store);
      let first = true;
      client.store.update = (id, fn) =>
        update(id, (r) => {
          if (first) {
            first = false;
            // A worker starts preflight between cancel's read and its write.
            void other.set(k.migration(id), JSON.stringify({ ...r, state: 'running' }), 'EX', 3600);
            conn.disconnect(true);
          }
          return fn(r);
        });
      const after = await client.cancel(rec.id);
      assert.equal(after.state, 'running');
      assert.equal(after.cancelRequested, true);
      for (const key of [k.lock('a', 'web'), k.lock('b', 'web')]) assert.match((await other.get(key)) ?? '', new RegExp(`^${rec.id}@`), `${key} still held by the running migration`);
    } finally {
      await client.close();
    }
  });

  // From the cold read of 00e6b67: a compare-and-set whose reply was lost, resent, found its
  // own text and reported a conflict, so the callback ran again on its own result (a step
  // start pushed a second history entry).
  it('an update resent after its reply was lost counts as written, once', async () => {
    const { conn, other } = connect();
    const { store, id, key } = await stored(conn);
    resendEach(conn, 'eval');
    let runs = 0;
    const updated = await store.update(id, (r) => {
      runs++;
      return { ...r, warnings: [...r.warnings, 'once'] };
    });
    assert.equal(runs, 1, 'the callback ran once');
    assert.deepEqual(updated.warnings, ['once']);
    assert.deepEqual((JSON.parse((await other.get(key)) ?? '{}') as MigrationRecord).warnings, ['once']);
  });

  // From the cold read of a0fe920: a create whose reply was lost and which was resent found
  // its own record and reported "already exists". The submission failed while its migration,
  // recorded and locked, was run by the repair loop.
  it('a submission resent after its reply was lost succeeds once', async () => {
    const { conn, other, k } = connect();
    const store = new MigrationStore(conn, prefix);
    const rec = record(`m-test-${Date.now().toString(36)}`);
    await store.create(rec);
    await store.create(rec);
    assert.deepEqual(JSON.parse((await other.get(k.migration(rec.id))) ?? '{}'), rec);
    assert.deepEqual(await other.zrange(k.migrations, 0, -1), [rec.id]);
    // The resend may come after a worker moved the record on: still this submission's.
    const moved = { ...rec, state: 'running' as const };
    await other.set(k.migration(rec.id), JSON.stringify(moved));
    await store.create(rec);
    assert.deepEqual(JSON.parse((await other.get(k.migration(rec.id))) ?? '{}'), moved, 'and it is left as the worker wrote it');
    await assert.rejects(store.create({ ...rec, createdAt: rec.createdAt + 1 }), /already exists/, 'another submission under the same id is still refused');
  });

  it('a lock resent after its reply was lost is released with the others when a later one is refused', async () => {
    const { conn, other, k } = connect();
    const store = new MigrationStore(conn, prefix);
    const { id: holder } = await stored(other);
    await new MigrationStore(other, prefix).lock(holder, [{ host: 'b', container: 'web' }]);
    resendEach(conn, 'set');
    const got = await store.lock('m-test-second', [
      { host: 'a', container: 'web' },
      { host: 'b', container: 'web' },
    ]);
    assert.deepEqual(got, { ok: false, heldBy: holder, host: 'b' });
    assert.equal(await other.get(k.lock('a', 'web')), null, "the refused submission's first lock is not left behind");
  });

  it('a batch pick resent after its reply was lost starts the item it took, not a second one', async () => {
    const { conn, other, k } = connect();
    const batches = new BatchStore(conn, prefix);
    const now = Date.now();
    const items = ['web', 'db'].map((container, index) => ({ index, container, from: 'a', to: 'b', migrationId: `m-test-${index}` }));
    const b: BatchRecord = { id: newBatchId(now), kind: 'batch', state: 'running', createdAt: now, maxParallel: 2, perHost: 2, items };
    await batches.create(b);
    await batches.create(b);
    assert.equal(await other.llen(k.batchPending(b.id)), 2, 'a resent create queues the items once');
    resendEach(conn, 'eval');
    assert.equal(await batches.pick(b), '0|a|b');
    assert.deepEqual(await other.smembers(k.batchRunning(b.id)), ['0|a|b'], 'only the item the caller will submit is running');
    assert.equal(await other.llen(k.batchPending(b.id)), 1);
  });

  // From the cold read of c50ea7c: a job that could not be queued (its reply lost, Redis gone
  // for longer than ioredis retries) failed the submission and freed its locks, but left its
  // record queued, which the repair loop then ran, unlocked, though the user was told it failed.
  describe('a submission whose job could not be queued', () => {
    function submitWith(enqueue: (id: string) => Promise<void>) {
      const { conf, conn, other, k } = connect();
      const store = new MigrationStore(conn, prefix);
      const queues = { enqueue: (_host: string, id: string) => enqueue(id) } as unknown as HostQueues;
      const submitted = submitMigration({ config: conf, store, queues, isCordoned: () => Promise.resolve(false) }, { container: 'web', from: 'a', to: 'b' });
      return { submitted, other, k };
    }

    it('is withdrawn: its record ends failed and its locks go', async () => {
      let id = '';
      const { submitted, other, k } = submitWith((mid) => ((id = mid), Promise.reject(new Error('Connection is closed.'))));
      await assert.rejects(submitted, /Connection is closed/);
      const rec = JSON.parse((await other.get(k.migration(id))) ?? '{}') as MigrationRecord;
      assert.equal(rec.state, 'failed', 'the repair loop finds nothing to run');
      assert.match(rec.error ?? '', /not submitted: Connection is closed/);
      assert.equal(await other.get(k.lock('a', 'web')), null);
      assert.equal(await other.get(k.lock('b', 'web')), null);
    });

    it('is reported as submitted when a worker started it meanwhile, and keeps its locks', async () => {
      const { submitted, other, k } = submitWith(async (mid) => {
        const r = JSON.parse((await other.get(k.migration(mid))) ?? '{}') as MigrationRecord;
        await other.set(k.migration(mid), JSON.stringify({ ...r, state: 'running' }));
        throw new Error('Connection is closed.');
      });
      const rec = await submitted;
      assert.equal(rec.state, 'running');
      assert.match((await other.get(k.lock('a', 'web'))) ?? '', new RegExp(`^${rec.id}@`));
    });
  });
});
