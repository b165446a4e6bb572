import { strict as assert } from 'node:assert';
import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/config/load';
import { RECORD_VERSION, type MigrationRecord } from '../../src/engine/model';
import { createStepProcessor } from '../../src/engine/processor';
import type { StepName } from '../../src/engine/steps';
import type { CommandRunner } from '../../src/exec/runner';
import type { HostQueues } from '../../src/queues';
import { createRedis, type RedisConnection } from '../../src/redis';
import type { Step } from '../../src/steps/context';
import { MigrationStore } from '../../src/store/migrationStore';
import { makeConfig } from '../support/bed';

/**
 * A cold read (2026-12-03): the cancel shortcut ("cancelled before the container was touched")
 * ran before a delivery checked that it still held its job lock. A zombie delivery (its worker
 * paused past the lock) could end the migration, and tear down post-copy, while its successor
 * was checkpointing. Against the bed's real Redis; the job, the queues and the hosts' commands
 * are stand-ins, since the path under test must not reach any of them.
 */
describe('a cancel seen by a delivery that lost its job lock', function () {
  this.timeout(30_000);
  let conn: RedisConnection | undefined;
  let prefix = '';

  after(async () => {
    if (conn) {
      const left = await conn.keys(`${prefix}:*`);
      if (left.length) await conn.del(...left);
      conn.disconnect();
    }
  });

  it('leaves the migration to the delivery that holds the lock: not cancelled, nothing run', async () => {
    const config = loadConfig({ file: makeConfig().file, env: {} });
    prefix = config.redis.prefix;
    conn = createRedis(config);
    const store = new MigrationStore(conn, prefix);
    const now = Date.now();
    const id = `m-${now.toString(36)}-0123abcd`;
    const rec: MigrationRecord = { v: RECORD_VERSION, id, container: 'web', from: 'a', to: 'b', state: 'queued', step: 'preflight', createdAt: now, updatedAt: now, probe: { kind: 'none' }, history: [], warnings: [], cancelRequested: true };
    await store.create(rec);
    const ran: string[] = [];
    const runner: CommandRunner = {
      where: 'nowhere',
      run(argv) {
        ran.push(argv.join(' '));
        return Promise.resolve({ code: 1, stdout: '', stderr: 'not in this test' });
      },
    };
    const step: Step = () => {
      ran.push('a step');
      return Promise.resolve({ result: {} });
    };
    const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined, debug: () => undefined, child: () => quiet } as unknown as Logger;
    const process = createStepProcessor({
      config,
      self: config.hosts.find((h) => h.name === 'a') ?? config.hosts[0],
      installation: 'test',
      store,
      queues: { enqueue: () => Promise.resolve() } as unknown as HostQueues,
      localRunner: runner,
      remoteRunner: () => runner,
      steps: new Proxy({}, { get: () => step }) as Record<StepName, Step>,
      log: quiet,
    });
    // The lock lapsed while this worker was paused: BullMQ's extendLock answers 0.
    const job = { id: 'j1', name: 'step', data: { migrationId: id, step: 'preflight' }, attemptsMade: 0, extendLock: () => Promise.resolve(0) } as unknown as Job<unknown>;
    const out = await process(job, 'lapsed-lock-token');
    assert.deepEqual(out, { skipped: 'this delivery no longer holds its job lock' });
    const after = await store.get(id);
    assert.equal(after?.state, 'queued', "the migration is still its successor's to end");
    assert.deepEqual(ran, [], 'nothing ran on any host');
  });
});
