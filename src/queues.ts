import { Queue } from 'bullmq';
import type { RedisConnection as IORedis } from './redis';
import type { FerryConfig, StepName } from './config/load';
import { StepJobData, stepJobOptions } from '../jobs/stepJob';

/** Each host has one queue; its worker is the only consumer, so a job runs where it must. */
export function hostQueueName(host: string): string {
  return `host-${host}`;
}

/** The producers of all host queues, sharing one connection. close() is safe twice. */
export class HostQueues {
  private readonly queues = new Map<string, Queue<StepJobData>>();

  constructor(
    private readonly config: FerryConfig,
    private readonly connection: IORedis,
  ) {}

  get(host: string): Queue<StepJobData> {
    let q = this.queues.get(host);
    if (!q) {
      q = new Queue<StepJobData>(hostQueueName(host), { connection: this.connection, prefix: this.config.redis.prefix });
      this.queues.set(host, q);
    }
    return q;
  }

  async enqueue(host: string, migrationId: string, step: StepName, opts: { priority?: number } = {}): Promise<void> {
    await this.get(host).add(step, { migrationId, step }, { ...stepJobOptions(this.config, migrationId, step), ...opts });
  }

  async close(): Promise<void> {
    const qs = [...this.queues.values()];
    this.queues.clear();
    await Promise.all(qs.map((q) => q.close()));
  }
}
