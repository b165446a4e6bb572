import type { RedisConnection as IORedis } from '../redis';
import type { FerryConfig } from '../config/load';
import type { MigrationRecord } from '../engine/model';
import { HostQueues } from '../queues';
import { MigrationStore } from '../store/migrationStore';
import { Category, STATE_VOCABULARY, StateVocabulary } from '../engine/states';
import type { BatchSummary } from '../fleet/model';
import type { ScheduleView } from '../fleet/schedules';
import { FleetContext, HostView, readBatches, readDrains, readHosts, readSchedules } from './fleetView';
import { RecordCache } from './records';
import { MigrationView, migrationView } from './view';

/** Most migrations one overview lists; counts cover all. */
const OVERVIEW_LIMIT = 200;

export interface Overview {
  generatedAt: number;
  prefix: string;
  readOnly: boolean;
  /** What the states mean, so the page keeps no copy of its own. */
  vocabulary: StateVocabulary;
  counts: Record<Category, number>;
  migrations: MigrationView[];
  batches: BatchSummary[];
  drains: BatchSummary[];
  schedules: ScheduleView[];
  hosts: HostView[];
}

/**
 * Read-only access to everything the monitoring views show, from Redis alone: it works in
 * any process (dashboard, CLI) and agrees with every other one, since no state is kept here
 * that Redis does not have.
 */
export class Monitor {
  readonly records: RecordCache;
  readonly queues: HostQueues;
  private readonly store: MigrationStore;

  constructor(
    readonly config: FerryConfig,
    readonly redis: IORedis,
  ) {
    this.store = new MigrationStore(redis, config.redis.prefix);
    this.records = new RecordCache(this.store);
    this.queues = new HostQueues(config, redis);
  }

  async fleet(): Promise<FleetContext> {
    return { config: this.config, redis: this.redis, queues: this.queues, records: await this.records.all() };
  }

  async overview(opts: { readOnly: boolean }): Promise<Overview> {
    const ctx = await this.fleet();
    const now = Date.now();
    const counts: Record<Category, number> = { running: 0, queued: 0, done: 0, failed: 0 };
    const views = ctx.records.map((r) => migrationView(r, now));
    for (const v of views) counts[v.category] += 1;
    const [batches, drains, schedules, hosts] = await Promise.all([readBatches(ctx), readDrains(ctx), readSchedules(ctx), readHosts(ctx)]);
    return {
      generatedAt: now,
      prefix: this.config.redis.prefix,
      readOnly: opts.readOnly,
      vocabulary: STATE_VOCABULARY,
      counts,
      // Whatever is still moving first, then the most recent.
      migrations: [...views.filter((v) => v.category === 'running' || v.category === 'queued'), ...views.filter((v) => v.category === 'done' || v.category === 'failed')].slice(0, OVERVIEW_LIMIT),
      batches,
      drains,
      schedules,
      hosts,
    };
  }

  async migration(id: string): Promise<MigrationRecord | null> {
    return this.store.get(id);
  }

  async close(): Promise<void> {
    await this.queues.close();
  }
}
