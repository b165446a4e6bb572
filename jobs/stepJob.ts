import type { JobsOptions } from 'bullmq';
import type { FerryConfig } from '../src/config/load';
import { STEP_NAMES, STEP_TABLE, StepName } from '../src/engine/steps';
import { MIGRATION_ID } from '../src/engine/model';
import { ValidationError } from '../src/errors';
import { describeProblems, parseOr, strictObject } from '../src/validation';
import { z } from 'zod';

/** The payload of every job on a host queue: which migration, which step. Nothing else is trusted from the queue. */
export interface StepJobData {
  migrationId: string;
  step: StepName;
}

const NOT_AN_ID = 'must be a Ferry migration id (m-<time>-<8 hex digits>)';
const stepJobSchema = strictObject(
  {
    migrationId: z.string({ error: NOT_AN_ID }).regex(MIGRATION_ID, { error: NOT_AN_ID }),
    step: z.enum(STEP_NAMES, { error: `must be one of ${STEP_NAMES.join(', ')}` }),
  },
  'must be an object {migrationId, step}',
);

/** Job payloads can be put on the queue by anyone with Redis access: check them like user input. */
export function parseStepJob(data: unknown): StepJobData {
  return parseOr(stepJobSchema, data, (error) => new ValidationError(`malformed job payload: ${describeProblems(error)}`));
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
