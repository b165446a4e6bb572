import type { RedisConnection as IORedis } from './redis';
import type { FerryConfig } from './config/load';
import { MigrationEvent, MigrationRecord, TERMINAL_STATES } from './engine/model';
import { MigrateRequest, SubmitDeps, submitMigration } from './engine/submit';
import { withState } from './engine/transitions';
import { HostQueues } from './queues';
import { createRedis } from './redis';
import { HostState } from './store/hostState';
import { BatchRunner } from './fleet/batchRunner';
import { BatchStore } from './fleet/batchStore';
import type { DrainDeps } from './fleet/drain';
import { Schedules } from './fleet/schedules';
import { SshPool } from './ssh/pool';
import { MigrationStore } from './store/migrationStore';
import { followMigration } from './store/eventStream';
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
  /** Follows in progress: close() stops them. */
  private readonly following = new Set<AbortController>();
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
      // Run again when the record changed meanwhile (a worker starting its step): only the last run counts.
      ended = false;
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
    } else if (!TERMINAL_STATES.has(rec.state) && !rec.restoreStartedAt && (rec.step === 'checkpoint' || rec.step === 'transfer' || rec.step === 'restore')) {
      // Once frozen, only the source may bring the container back: its worker takes over,
      // whatever the other hosts' queues hold (a frozen one is checked there, not here).
      await this.queues.takeOver(rec.from, rec.id, 'cancel');
    }
    return rec;
  }

  /** Cancels a batch or drain: queued items never start, running ones finish or roll back. */
  cancelBatch(id: string) {
    return this.batches.cancel(id, (mid) => this.cancel(mid));
  }

  /**
   * Calls `onEvent` for every event of the migration, past and new, until it ends; returns
   * the final record as soon as the event of its end arrived (see store/eventStream).
   */
  async follow(id: string, onEvent: (ev: MigrationEvent) => void, opts: { timeoutMs?: number } = {}): Promise<MigrationRecord> {
    const stop = new AbortController();
    this.following.add(stop);
    try {
      return await followMigration(this.redis, keys(this.config.redis.prefix).migrationEvents(id), id, { get: (m) => this.store.get(m), onEvent, timeoutMs: opts.timeoutMs, signal: stop.signal });
    } finally {
      this.following.delete(stop);
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
    for (const f of this.following) f.abort();
    await this.queues.close();
    this.redis.disconnect();
  }
}
