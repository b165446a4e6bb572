import type { RedisConnection as IORedis } from '../redis';
import type { FerryConfig } from '../config/load';
import type { MigrationRecord } from '../engine/model';
import type { HostQueues } from '../queues';
import { BatchStore } from '../fleet/batchStore';
import { batchCounts, BatchSummary } from '../fleet/model';
import { Schedules, ScheduleView } from '../fleet/schedules';
import { HostState } from '../store/hostState';

/** Most batches (and drains) shown. */
const BATCH_LIMIT = 50;

/**
 * What the dashboard and `ferry watch` show of the fleet beyond single migrations: batches,
 * drains, scheduled drains, cordons and hosts, one small reader per section over the fleet
 * code's own stores (src/fleet, src/store/hostState). A reader returns [] (or nothing
 * cordoned) when there is nothing to show; the views say "none".
 */
export interface FleetContext {
  config: FerryConfig;
  redis: IORedis;
  queues: HostQueues;
  /** All migration records, newest first (see RecordCache). */
  records: MigrationRecord[];
}

export interface CordonView {
  cordoned: boolean;
  reason?: string;
  since?: number;
}

export interface HostView {
  name: string;
  address: string;
  /** Workers connected to the host's queue (0: nothing will run steps there). */
  workers: number;
  cordon: CordonView;
  /** Containers whose last successful migration brought them here. */
  containers: { name: string; migrationId: string; at: number }[];
  queue: Record<string, number>;
}

/** Batches and drains (a drain is a batch that empties one host), from the fleet's batch records. */
async function readBatchRecords(ctx: FleetContext): Promise<BatchSummary[]> {
  const byId = new Map(ctx.records.map((r) => [r.id, r]));
  const batches = await new BatchStore(ctx.redis, ctx.config.redis.prefix).list(BATCH_LIMIT);
  return batches.map((b) => ({ batch: b, counts: batchCounts(b.items.map((i) => byId.get(i.migrationId))) }));
}

export async function readBatches(ctx: FleetContext): Promise<BatchSummary[]> {
  return (await readBatchRecords(ctx)).filter((b) => b.batch.kind === 'batch');
}

export async function readDrains(ctx: FleetContext): Promise<BatchSummary[]> {
  return (await readBatchRecords(ctx)).filter((b) => b.batch.kind === 'drain');
}

/** Scheduled drains: one-off (--at) and repeating (--cron), soonest first. */
export async function readSchedules(ctx: FleetContext): Promise<ScheduleView[]> {
  const schedules = new Schedules(ctx.redis, ctx.config.redis.prefix);
  try {
    return await schedules.list();
  } finally {
    await schedules.close();
  }
}

/** Cordon state per host name; a host missing from the map is not cordoned. */
export async function readCordons(ctx: FleetContext): Promise<Map<string, CordonView>> {
  const all = await new HostState(ctx.redis, ctx.config.redis.prefix).all();
  return new Map(Object.entries(all).map(([host, c]) => [host, { cordoned: true, reason: c.reason, since: c.at }]));
}

/** Queue counts Ferry shows and exports per host queue. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

/** Inventory hosts with their workers (from BullMQ), cordon and the containers Ferry moved there. */
export async function readHosts(ctx: FleetContext): Promise<HostView[]> {
  const cordons = await readCordons(ctx);
  // Where each container is, as far as Ferry knows: the destination of its latest success.
  const where = new Map<string, { host: string; migrationId: string; at: number }>();
  for (const r of ctx.records) {
    if (r.state !== 'succeeded' || where.has(r.container)) continue;
    where.set(r.container, { host: r.to, migrationId: r.id, at: r.finishedAt ?? r.updatedAt });
  }
  return Promise.all(
    ctx.config.hosts.map(async (h) => {
      const q = ctx.queues.get(h.name);
      const [workers, queue] = await Promise.all([q.getWorkersCount(), q.getJobCounts(...QUEUE_STATES)]);
      const containers = [...where.entries()].filter(([, w]) => w.host === h.name).map(([name, w]) => ({ name, migrationId: w.migrationId, at: w.at }));
      return { name: h.name, address: h.address, workers, cordon: cordons.get(h.name) ?? { cordoned: false }, containers, queue };
    }),
  );
}
