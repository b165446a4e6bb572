import { strict as assert } from 'node:assert';
import type { MigrationEvent, MigrationRecord, MigrationState } from '../../src/engine/model';
import { FerryError } from '../../src/errors';
import type { RedisConnection } from '../../src/redis';
import { decodeEvent, follow, followMigration, StreamEvent } from '../../src/store/eventStream';

type Entry = [string, string[]];
type Reply = [string, Entry[]][] | null;

/**
 * Stands in for the reader's own connection: XREAD answers from a script of replies (or
 * errors), then blocks for `blockMs` with nothing, as Redis does; disconnect() rejects a
 * blocked read, as ioredis does.
 */
class FakeConn {
  readonly reads: string[] = [];
  disconnects = 0;
  private pending: ((e: Error) => void) | undefined;

  constructor(
    private readonly script: (Reply | Error)[],
    private readonly newest = '0-0',
  ) {}

  on(): this {
    return this;
  }

  xrevrange(): Promise<Entry[]> {
    return Promise.resolve(this.newest === '0-0' ? [] : [[this.newest, []]]);
  }

  xread(...args: (string | number)[]): Promise<Reply> {
    this.reads.push(String(args[args.length - 1]));
    const next = this.script.shift();
    if (next instanceof Error) return Promise.reject(next);
    if (next !== undefined) return Promise.resolve(next);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve(null), Number(args[3]));
      this.pending = (e) => {
        clearTimeout(t);
        reject(e);
      };
    });
  }

  disconnect(): void {
    this.disconnects++;
    this.pending?.(new Error('Connection is closed.'));
    this.pending = undefined;
  }
}

function redisWith(conn: FakeConn): RedisConnection {
  return { duplicate: () => conn } as unknown as RedisConnection;
}

const ev = (type: MigrationEvent['type'], state?: MigrationState): MigrationEvent => ({ migrationId: 'm-1', type, at: 1, ...(state ? { state } : {}) });
const entry = (id: string, e: MigrationEvent, extra: string[] = []): Entry => [id, [...extra, 'json', JSON.stringify(e)]];
const reply = (...entries: Entry[]): Reply => [['s', entries]];

describe('event stream reader', () => {
  it('finds the event by its field name', () => {
    assert.deepEqual(decodeEvent(['other', 'x', 'json', JSON.stringify(ev('log'))]), ev('log'));
    assert.equal(decodeEvent(['other', 'x']), null);
  });

  it('yields what each read brought, an empty list for a read that waited in vain, and goes on after the last id', async () => {
    const conn = new FakeConn([reply(entry('1-0', ev('created')), entry('2-0', ev('log'), ['x', 'y'])), null, reply(entry('3-0', ev('log')))]);
    const got: StreamEvent[][] = [];
    for await (const batch of follow(redisWith(conn), 's', '0')) {
      got.push(batch);
      if (got.length === 3) break;
    }
    assert.deepEqual(
      got.map((b) => b.map((e) => e.id)),
      [['1-0', '2-0'], [], ['3-0']],
    );
    assert.deepEqual(conn.reads, ['0', '2-0', '2-0']);
    assert.equal(conn.disconnects, 1, 'leaving the loop closes the connection');
  });

  it("pins '$' to the newest id once, so nothing between two reads is skipped", async () => {
    const conn = new FakeConn([null, null], '7-0');
    let n = 0;
    for await (const _ of follow(redisWith(conn), 's', '$')) if (++n === 2) break;
    assert.deepEqual(conn.reads, ['7-0', '7-0']);
  });

  it('stops a blocked read at once; stop() twice is harmless', async () => {
    const conn = new FakeConn([]);
    const events = follow(redisWith(conn), 's', '0', { blockMs: 60_000 });
    const t0 = Date.now();
    const done = (async () => {
      let batches = 0;
      for await (const _ of events) batches++;
      return batches;
    })();
    setTimeout(() => events.stop(), 20);
    assert.equal(await done, 0);
    assert.ok(Date.now() - t0 < 5000);
    events.stop();
    assert.equal(conn.disconnects, 1);
  });

  it('stops on its signal, and closes a connection never read from', async () => {
    const conn = new FakeConn([]);
    const ac = new AbortController();
    follow(redisWith(conn), 's', '0', { signal: ac.signal });
    ac.abort();
    assert.equal(conn.disconnects, 1);
  });

  it('throws a failed read, or reports it and tries again when asked to', async () => {
    await assert.rejects(
      (async () => {
        for await (const _ of follow(redisWith(new FakeConn([new Error('down')])), 's', '0'));
      })(),
      /down/,
    );
    const errors: string[] = [];
    const conn = new FakeConn([new Error('down'), reply(entry('1-0', ev('log')))]);
    for await (const batch of follow(redisWith(conn), 's', '0', { onError: (e) => errors.push(e.message) })) {
      assert.equal(batch.length, 1);
      break;
    }
    assert.deepEqual(errors, ['down']);
  });
});

describe('following one migration', () => {
  const record = (state: MigrationState) => ({ id: 'm-1', state }) as MigrationRecord;

  it('returns as soon as the event of its end is delivered, without another read', async () => {
    const conn = new FakeConn([reply(entry('1-0', ev('created')), entry('2-0', ev('state', 'rolling-back'))), reply(entry('3-0', ev('state', 'failed-rolled-back')), entry('4-0', ev('log')))]);
    const seen: string[] = [];
    let gets = 0;
    const t0 = Date.now();
    const rec = await followMigration(redisWith(conn), 's', 'm-1', {
      get: () => {
        gets++;
        return Promise.resolve(record('failed-rolled-back'));
      },
      onEvent: (e) => seen.push(`${e.type}${e.state ? `:${e.state}` : ''}`),
    });
    assert.equal(rec.state, 'failed-rolled-back');
    assert.deepEqual(seen, ['created', 'state:rolling-back', 'state:failed-rolled-back']);
    assert.equal(conn.reads.length, 2);
    assert.equal(gets, 1);
    assert.ok(Date.now() - t0 < 500, 'no blocking read after the end');
    assert.equal(conn.disconnects, 1);
  });

  it('finds a migration that ended without such an event when a read waits in vain', async () => {
    const conn = new FakeConn([reply(entry('1-0', ev('created', 'failed'))), null]);
    const rec = await followMigration(redisWith(conn), 's', 'm-1', { get: () => Promise.resolve(record('failed')), onEvent: () => undefined });
    assert.equal(rec.state, 'failed');
  });

  it('says NOT_FOUND without a record, and WAIT_TIMEOUT when it takes too long', async () => {
    const code = (e: unknown) => (e instanceof FerryError ? e.code : String(e));
    await assert.rejects(followMigration(redisWith(new FakeConn([null])), 's', 'm-1', { get: () => Promise.resolve(null), onEvent: () => undefined }), (e) => code(e) === 'NOT_FOUND');
    await assert.rejects(
      followMigration(redisWith(new FakeConn([])), 's', 'm-1', { get: () => Promise.resolve(record('running')), onEvent: () => undefined, timeoutMs: 30, blockMs: 20 }),
      (e) => code(e) === 'WAIT_TIMEOUT' && String(e).includes('state: running'),
    );
  });

  it('ends with STOPPED when its signal stops it', async () => {
    const ac = new AbortController();
    const p = followMigration(redisWith(new FakeConn([])), 's', 'm-1', { get: () => Promise.resolve(record('running')), onEvent: () => undefined, signal: ac.signal, blockMs: 60_000 });
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(p, (e) => e instanceof FerryError && e.code === 'STOPPED');
  });
});
