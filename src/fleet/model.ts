import type { HealthProbe, MigrationRecord } from '../engine/model';
import { categoryOf } from '../engine/states';

export interface BatchItem {
  index: number;
  container: string;
  from: string;
  to: string;
  /** Chosen when the batch is created, so a resumed batch submits the same migration again, harmlessly. */
  migrationId: string;
  probe?: HealthProbe;
}

export type BatchState = 'running' | 'done' | 'cancelled';

export interface BatchRecord {
  id: string;
  kind: 'batch' | 'drain';
  state: BatchState;
  createdAt: number;
  finishedAt?: number;
  maxParallel: number;
  perHost: number;
  items: BatchItem[];
  /** Drains: the host emptied, containers stopped on purpose (label), and those left alone. */
  drainHost?: string;
  stopped?: string[];
  skipped?: { container: string; reason: string }[];
  cancelRequested?: boolean;
  /** Set when a scheduled drain started this batch. */
  scheduleId?: string;
}

/**
 * How far a batch's migrations got, one category each (engine/states); `remaining` counts the
 * queued ones and those not submitted yet, which wait in the batch's window.
 */
export interface BatchCounts {
  done: number;
  failed: number;
  running: number;
  remaining: number;
  /** Checkpoint bytes sent so far. */
  bytes: number;
}

/** A batch or drain as the dashboard and `ferry watch` list it. */
export interface BatchSummary {
  batch: BatchRecord;
  counts: BatchCounts;
}

/** One batch in full (`ferry batches ID`, `--wait`): each item with its migration, if submitted. */
export interface BatchView extends BatchSummary {
  items: { item: BatchItem; migration: MigrationRecord | null }[];
}

/** The counts of a batch from its items' migrations (null: not submitted yet). */
export function batchCounts(migrations: Iterable<MigrationRecord | null | undefined>): BatchCounts {
  const counts: BatchCounts = { done: 0, failed: 0, running: 0, remaining: 0, bytes: 0 };
  for (const m of migrations) {
    const category = m ? categoryOf(m.state) : 'queued';
    counts[category === 'queued' ? 'remaining' : category] += 1;
    counts.bytes += m?.bytesTransferred ?? 0;
  }
  return counts;
}

export const BATCH_ID = /^b-[a-z0-9]{1,16}-[a-f0-9]{8}$/;
