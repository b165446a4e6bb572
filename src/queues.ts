import { Queue } from 'bullmq';
import type { RedisConnection as IORedis } from './redis';
import type { FerryConfig, StepName } from './config/load';
import { StepJobData, stepJobOptions } from '../jobs/stepJob';
import { TAKEOVER_JOB, TakeoverJobData, takeoverJobOptions, TakeoverKind } from '../jobs/takeoverJob';

/** Each host has one queue; its worker is the only consumer, so a job runs where it must. */
export function hostQueueName(host: string): string {
  return `host-${host}`;
}

/** The producers of all host queues, sharing one connection. close() is safe twice. */
export class HostQueues {
  private readonly queues = new Map<string, Queue<StepJobData | TakeoverJobData>>();

  constructor(
    private readonly config: FerryConfig,
    private readonly connection: IORedis,
  ) {}

  get(host: string): Queue<StepJobData | TakeoverJobData> {
    let q = this.queues.get(host);
    if (!q) {
      q = new Queue<StepJobData | TakeoverJobData>(hostQueueName(host), { connection: this.connection, prefix: this.config.redis.prefix });
      this.queues.set(host, q);
    }
    return q;
  }

  async enqueue(host: string, migrationId: string, step: StepName, opts: { priority?: number } = {}): Promise<void> {
    await this.get(host).add(step, { migrationId, step }, { ...stepJobOptions(this.config, migrationId, step), ...opts });
  }

  /** Asks the source host's worker to take a frozen container back (see jobs/takeoverJob.ts). */
  async takeOver(sourceHost: string, migrationId: string, kind: TakeoverKind, delayMs = 0): Promise<void> {
    await this.get(sourceHost).add(TAKEOVER_JOB, { migrationId, kind }, takeoverJobOptions(migrationId, kind, delayMs));
  }

  async close(): Promise<void> {
    const qs = [...this.queues.values()];
    this.queues.clear();
    await Promise.all(qs.map((q) => q.close()));
  }
}
