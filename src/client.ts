import type { RedisConnection as IORedis } from './redis';
import type { FerryConfig } from './config/load';
import { MigrationEvent, MigrationRecord, TERMINAL_STATES } from './engine/model';
import { MigrateRequest, SubmitDeps, submitMigration } from './engine/submit';
import { withState } from './engine/transitions';
import { FerryError } from './errors';
import { HostQueues } from './queues';
import { createRedis } from './redis';
import { HostState } from './store/hostState';
import { BatchRunner } from './fleet/batchRunner';
import { BatchStore } from './fleet/batchStore';
import type { DrainDeps } from './fleet/drain';
import { Schedules } from './fleet/schedules';
import { SshPool } from './ssh/pool';
import { MigrationStore } from './store/migrationStore';
import { keys } from './store/keys';

export type { MigrateRequest };

/**
 * The producer side: what the CLI, the dashboard and library users call. Checks a request
 * against the inventory before anything is queued; close() is safe to call twice.
 */
export class FerryClient {
  readonly store: MigrationStore;
  readonly hosts: HostState;
  readonly queues: HostQueues;
  readonly batchStore: BatchStore;
  readonly batches: BatchRunner;
  private readonly blocking: IORedis[] = [];
  private closed = false;

  constructor(
    readonly config: FerryConfig,
    readonly redis: IORedis = createRedis(config),
  ) {
    this.store = new MigrationStore(redis, config.redis.prefix);
    this.queues = new HostQueues(config, redis);
    this.hosts = new HostState(redis, config.redis.prefix);
    this.batchStore = new BatchStore(redis, config.redis.prefix);
    this.batches = new BatchRunner(this.batchStore, this.store, this.submitDeps());
  }

  /** Validates, locks the container on both hosts, records the migration and queues preflight. */
  migrate(req: MigrateRequest): Promise<MigrationRecord> {
    return submitMigration(this.submitDeps(), req);
  }

  submitDeps(): SubmitDeps {
    return { config: this.config, store: this.store, queues: this.queues, isCordoned: (h) => this.hosts.isCordoned(h) };
  }

  async get(id: string): Promise<MigrationRecord | null> {
    return this.store.get(id);
  }

  /**
   * Asks a migration to stop. Before the container is frozen it ends as cancelled; once
   * frozen it finishes or rolls back, whichever keeps the container whole.
   */
  async cancel(id: string): Promise<MigrationRecord> {
    let ended = false;
    const rec = await this.store.update(id, (r) => {
      if (TERMINAL_STATES.has(r.state)) return null;
      r.cancelRequested = true;
      if (r.state === 'queued') {
        withState(r, 'cancelled', Date.now(), 'cancelled before it started');
        ended = true;
      }
      return r;
    });
    if (ended) {
      await this.store.ended(rec, 'cancelled', Date.now(), 'cancelled before it started');
      await this.batches.onMigrationTerminal(rec);
    }
    return rec;
  }

  /** Cancels a batch or drain: queued items never start, running ones finish or roll back. */
  cancelBatch(id: string) {
    return this.batches.cancel(id, (mid) => this.cancel(mid));
  }

  /**
   * Calls `onEvent` for every event of the migration, past and new, until it ends; returns
   * the final record. Reads its own stream with a blocking XREAD on a separate connection.
   */
  async follow(id: string, onEvent: (ev: MigrationEvent) => void, opts: { timeoutMs?: number } = {}): Promise<MigrationRecord> {
    const conn = this.redis.duplicate();
    this.blocking.push(conn);
    const key = keys(this.config.redis.prefix).migrationEvents(id);
    const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity;
    let last = '0';
    try {
      for (;;) {
        const res = await conn.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', key, last);
        for (const [, entries] of res ?? []) {
          for (const [streamId, fields] of entries) {
            last = streamId;
            onEvent(JSON.parse(fields[1]) as MigrationEvent);
          }
        }
        const rec = await this.store.get(id);
        if (!rec) throw new FerryError(`migration ${id} not found`, { code: 'NOT_FOUND', permanent: true });
        if (TERMINAL_STATES.has(rec.state) && (!res || res.length === 0)) return rec;
        if (Date.now() > deadline) throw new FerryError(`gave up waiting for migration ${id} after ${opts.timeoutMs} ms (state: ${rec.state})`, { code: 'WAIT_TIMEOUT' });
      }
    } finally {
      conn.disconnect();
      this.blocking.splice(this.blocking.indexOf(conn), 1);
    }
  }

  private sshPool: SshPool | undefined;

  /** For drains and `ferry hosts`: reads hosts over SSH, with the same keys and checks as workers. */
  drainDeps(): DrainDeps & { batches: BatchRunner; rememberDrain(host: string, batchId: string): Promise<void> } {
    this.sshPool ??= new SshPool(this.config);
    const pool = this.sshPool;
    return {
      config: this.config,
      hosts: this.hosts,
      runnerFor: (h) => pool.get(h),
      batches: this.batches,
      rememberDrain: (h, id) => this.hosts.rememberDrain(h, id),
    };
  }

  schedules(): Schedules {
    const s = new Schedules(this.redis, this.config.redis.prefix);
    this.closers.push(() => s.close());
    return s;
  }

  private readonly closers: (() => Promise<void>)[] = [];

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sshPool?.close();
    for (const c of this.closers) await c();
    for (const c of this.blocking) c.disconnect();
    await this.queues.close();
    this.redis.disconnect();
  }
}
