import type { HealthProbe } from '../engine/model';

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

export const BATCH_ID = /^b-[a-z0-9]{1,16}-[a-f0-9]{8}$/;
