import { strict as assert } from 'node:assert';
import { loadConfig } from '../../src/config/load';
import { RECORD_VERSION, type MigrationRecord } from '../../src/engine/model';
import { createRedis, type RedisConnection } from '../../src/redis';
import { keys } from '../../src/store/keys';
import { MigrationStore } from '../../src/store/migrationStore';
import { FerryClient } from '../../src/client';
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
});
