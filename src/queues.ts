import { Queue } from 'bullmq';
import type { RedisConnection as IORedis } from './redis';
import type { FerryConfig, StepName } from './config/load';
import { StepJobData, stepJobOptions } from '../jobs/stepJob';
import { TAKEOVER_JOB, TakeoverJobData, takeoverJobOptions, TakeoverKind } from '../jobs/takeoverJob';

/** Each host has one queue for its steps; its worker is the only consumer, so a job runs where it must. */
export function hostQueueName(host: string): string {
  return `host-${host}`;
}

/**
 * And one for what brings a frozen container back: take-overs (the deadline, a cancel after the
 * freeze) and rollback. Its worker slots are its own, so it never waits behind steps that fill
 * the host's queue (four transfers of an hour each would otherwise hold the deadline of a fifth
 * frozen container for that hour). Not `host-…`: no host name can make the two collide.
 */
export function urgentQueueName(host: string): string {
  return `urgent-${host}`;
}

/** The queue a step's job goes to: rollback is the compensation that ends a freeze. */
export function stepQueueName(host: string, step: StepName): string {
  return step === 'rollback' ? urgentQueueName(host) : hostQueueName(host);
}

/** The producers of all host queues, sharing one connection. close() is safe twice. */
export class HostQueues {
  private readonly queues = new Map<string, Queue<StepJobData | TakeoverJobData>>();

  constructor(
    private readonly config: FerryConfig,
    private readonly connection: IORedis,
  ) {}

  /** The host's step queue. */
  get(host: string): Queue<StepJobData | TakeoverJobData> {
    return this.named(hostQueueName(host));
  }

  /** The host's queue for take-overs and rollback (urgentQueueName). */
  urgent(host: string): Queue<StepJobData | TakeoverJobData> {
    return this.named(urgentQueueName(host));
  }

  /** The queue that holds (or will hold) this step's job on this host. */
  forStep(host: string, step: StepName): Queue<StepJobData | TakeoverJobData> {
    return this.named(stepQueueName(host, step));
  }

  private named(name: string): Queue<StepJobData | TakeoverJobData> {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue<StepJobData | TakeoverJobData>(name, { connection: this.connection, prefix: this.config.redis.prefix });
      this.queues.set(name, q);
    }
    return q;
  }

  async enqueue(host: string, migrationId: string, step: StepName, opts: { priority?: number } = {}): Promise<void> {
    await this.forStep(host, step).add(step, { migrationId, step }, { ...stepJobOptions(this.config, migrationId, step), ...opts });
  }

  /** Asks the source host's worker to take a frozen container back (see jobs/takeoverJob.ts). */
  async takeOver(sourceHost: string, migrationId: string, kind: TakeoverKind, delayMs = 0): Promise<void> {
    await this.urgent(sourceHost).add(TAKEOVER_JOB, { migrationId, kind }, takeoverJobOptions(migrationId, kind, delayMs));
  }

  async close(): Promise<void> {
    const qs = [...this.queues.values()];
    this.queues.clear();
    await Promise.all(qs.map((q) => q.close()));
  }
}
