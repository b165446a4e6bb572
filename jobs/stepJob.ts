import type { JobsOptions } from 'bullmq';
import type { FerryConfig } from '../src/config/load';
import { STEP_NAMES, STEP_TABLE, StepName } from '../src/engine/steps';
import { ValidationError } from '../src/errors';

/** The payload of every job on a host queue: which migration, which step. Nothing else is trusted from the queue. */
export interface StepJobData {
  migrationId: string;
  step: StepName;
}

const MIGRATION_ID = /^m-[a-z0-9]{1,16}-[a-f0-9]{8}$/;

/** Job payloads can be put on the queue by anyone with Redis access: check them like user input. */
export function parseStepJob(data: unknown): StepJobData {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ValidationError(`malformed job payload: expected an object {migrationId, step}, got ${Array.isArray(data) ? 'an array' : data === null ? 'null' : typeof data}`);
  }
  const d = data as Record<string, unknown>;
  const extra = Object.keys(d).filter((k) => k !== 'migrationId' && k !== 'step');
  if (extra.length) throw new ValidationError(`malformed job payload: unexpected field(s) ${extra.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`);
  if (typeof d.migrationId !== 'string' || !MIGRATION_ID.test(d.migrationId)) {
    throw new ValidationError(`malformed job payload: migrationId ${JSON.stringify(String(d.migrationId).slice(0, 60))} is not a Ferry migration id`);
  }
  if (typeof d.step !== 'string' || !(STEP_NAMES as readonly string[]).includes(d.step)) {
    throw new ValidationError(`malformed job payload: step ${JSON.stringify(String(d.step).slice(0, 60))} is not one of ${STEP_NAMES.join(', ')}`);
  }
  return { migrationId: d.migrationId, step: d.step as StepName };
}

/** Deterministic: adding the same step twice is a no-op in BullMQ, which makes re-enqueueing after a crash safe. */
export function stepJobId(migrationId: string, step: StepName): string {
  return `${migrationId}.${step}`;
}

export function stepJobOptions(config: FerryConfig, migrationId: string, step: StepName): JobsOptions {
  return {
    jobId: stepJobId(migrationId, step),
    priority: STEP_TABLE[step].priority,
    attempts: config.retry.attempts[step],
    backoff: { type: 'exponential', delay: config.retry.backoffMs },
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}
