import type { RedisConnection as IORedis } from '../redis';
import type { FerryConfig } from '../config/load';
import type { MigrationRecord } from '../engine/model';
import type { HostQueues } from '../queues';
import { BatchStore } from '../fleet/batchStore';
import { Schedules } from '../fleet/schedules';
import { HostState } from '../store/hostState';
import { categoryOf } from './view';

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

export interface BatchView {
  id: string;
  kind: 'batch' | 'drain';
  state: string;
  /** For drains: the host being emptied. */
  host?: string;
  createdAt?: number;
  total: number;
  done: number;
  failed: number;
  running: number;
  queued: number;
}

export interface ScheduleView {
  id: string;
  host: string;
  /** Next time it runs (ms since epoch). */
  at?: number;
  /** Cron-like or free text, as the fleet code stores it. */
  when?: string;
  state?: string;
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
async function readBatchRecords(ctx: FleetContext): Promise<BatchView[]> {
  const byId = new Map(ctx.records.map((r) => [r.id, r]));
  const batches = await new BatchStore(ctx.redis, ctx.config.redis.prefix).list(BATCH_LIMIT);
  return batches.map((b) => {
    const v: BatchView = { id: b.id, kind: b.kind, state: b.state, host: b.drainHost, createdAt: b.createdAt, total: b.items.length, done: 0, failed: 0, running: 0, queued: 0 };
    for (const item of b.items) {
      const rec = byId.get(item.migrationId);
      // An item not submitted yet waits in the batch's window: queued, as far as people care.
      v[rec ? categoryOf(rec.state) : 'queued'] += 1;
    }
    return v;
  });
}

export async function readBatches(ctx: FleetContext): Promise<BatchView[]> {
  return (await readBatchRecords(ctx)).filter((b) => b.kind === 'batch');
}

export async function readDrains(ctx: FleetContext): Promise<BatchView[]> {
  return (await readBatchRecords(ctx)).filter((b) => b.kind === 'drain');
}

/** Scheduled drains: one-off (--at) and repeating (--cron), soonest first. */
export async function readSchedules(ctx: FleetContext): Promise<ScheduleView[]> {
  const schedules = new Schedules(ctx.redis, ctx.config.redis.prefix);
  try {
    return (await schedules.list()).map((s) => ({
      id: s.id,
      host: s.host,
      at: s.next ?? undefined,
      when: s.kind === 'cron' ? `cron ${s.pattern ?? '?'} (UTC)` : 'once',
      state: s.to?.length ? `to ${s.to.join(', ')}` : 'scheduled',
    }));
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
