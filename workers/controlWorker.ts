import { Job, UnrecoverableError, Worker } from 'bullmq';
import type { RedisConnection as IORedis } from '../src/redis';
import type { Logger } from 'pino';
import type { FerryConfig } from '../src/config/load';
import { coerceError } from '../src/errors';
import { DrainDeps, executeDrain, prepareDrain } from '../src/fleet/drain';
import type { BatchRunner } from '../src/fleet/batchRunner';
import { CONTROL_QUEUE, parseDrainJob } from '../src/fleet/schedules';
import type { HostState } from '../src/store/hostState';

export interface ControlDeps extends DrainDeps {
  config: FerryConfig;
  hosts: HostState;
  batches: BatchRunner;
  log: Logger;
}

/**
 * Consumes the control queue that every host worker shares: scheduled drains fire here.
 * The drain is planned when it fires (the fleet may have changed since it was scheduled)
 * and refused, with the reason in the job's failure, if some container has no place.
 */
export function createControlWorker(deps: ControlDeps, connection: IORedis): Worker {
  return new Worker(
    CONTROL_QUEUE,
    async (job: Job<unknown>) => {
      if (job.name !== 'drain') throw new UnrecoverableError(`unknown control job "${String(job.name).slice(0, 40)}"`);
      let data;
      try {
        data = parseDrainJob(job.data);
      } catch (e: unknown) {
        throw new UnrecoverableError(coerceError(e).message);
      }
      const scheduleId = job.repeatJobKey ?? job.id ?? 'unknown';
      const opts = { host: data.host, to: data.to, maxParallel: data.maxParallel, perHost: data.perHost, scheduleId };
      const prepared = await prepareDrain(deps, opts);
      try {
        const batch = await executeDrain({ ...deps, rememberDrain: (h, id) => deps.hosts.rememberDrain(h, id) }, prepared, opts);
        deps.log.info({ scheduleId, batchId: batch.id, host: data.host, moves: prepared.plan.moves.length }, 'scheduled drain started');
        return { batchId: batch.id };
      } catch (e: unknown) {
        throw new UnrecoverableError(coerceError(e).message);
      }
    },
    { connection, prefix: deps.config.redis.prefix, concurrency: 1, autorun: false },
  );
}
