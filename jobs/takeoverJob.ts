import type { JobsOptions } from 'bullmq';
import { MIGRATION_ID } from '../src/engine/model';
import { ValidationError } from '../src/errors';

/**
 * A take-over job, on the source host's own queue: the source worker brings a frozen
 * container back where it was when the migration cannot go on without it, whatever the
 * other hosts' queues do. `deadline`: the container stayed frozen too long before restore
 * started (timeouts.frozenMs after the checkpoint began). `cancel`: `ferry cancel` after the freeze.
 */
export const TAKEOVER_JOB = 'take-over';

export type TakeoverKind = 'deadline' | 'cancel';

export interface TakeoverJobData {
  migrationId: string;
  kind: TakeoverKind;
}

export function parseTakeoverJob(data: unknown): TakeoverJobData {
  const d = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  if (typeof d.migrationId !== 'string' || !MIGRATION_ID.test(d.migrationId)) throw new ValidationError(`malformed take-over job: migrationId ${JSON.stringify(d.migrationId)?.slice(0, 60)} is not a Ferry migration id`);
  if (d.kind !== 'deadline' && d.kind !== 'cancel') throw new ValidationError(`malformed take-over job: kind ${JSON.stringify(d.kind)?.slice(0, 40)} is not deadline or cancel`);
  const extra = Object.keys(d).filter((k) => k !== 'migrationId' && k !== 'kind');
  if (extra.length) throw new ValidationError(`malformed take-over job: unexpected field(s) ${extra.slice(0, 5).join(', ')}`);
  return { migrationId: d.migrationId, kind: d.kind };
}

export function takeoverJobId(migrationId: string, kind: TakeoverKind): string {
  return `${migrationId}.${kind}`;
}

/** One of each kind per migration: scheduling it again is a no-op. Runs before any step. */
export function takeoverJobOptions(migrationId: string, kind: TakeoverKind, delayMs: number): JobsOptions {
  return {
    jobId: takeoverJobId(migrationId, kind),
    delay: delayMs,
    priority: 1,
    attempts: 5,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}
