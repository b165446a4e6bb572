import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { RedisConnection as IORedis } from '../redis';
import { ValidationError } from '../errors';
import { checkHostName } from '../names';

export const CONTROL_QUEUE = 'control';

/** What a scheduled drain job carries; checked again when it fires, like any job payload. */
export interface DrainJobData {
  host: string;
  to?: string[];
  maxParallel: number;
  perHost: number;
}

export interface ScheduleView {
  id: string;
  kind: 'at' | 'cron';
  host: string;
  to?: string[];
  pattern?: string;
  next: number | null;
}

export function parseDrainJob(data: unknown): DrainJobData {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ValidationError('malformed drain job payload: expected an object');
  const d = data as Record<string, unknown>;
  const host = checkHostName(d.host);
  const to = d.to === undefined ? undefined : Array.isArray(d.to) ? d.to.map((h) => checkHostName(h)) : undefined;
  if (d.to !== undefined && !to) throw new ValidationError('malformed drain job payload: "to" must be a list of host names');
  const n = (v: unknown, name: string) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000) throw new ValidationError(`malformed drain job payload: ${name} must be an integer from 1 to 1000`);
    return v;
  };
  return { host, to, maxParallel: n(d.maxParallel, 'maxParallel'), perHost: n(d.perHost, 'perHost') };
}

/**
 * Scheduled drains live in BullMQ itself (a delayed job for --at, a job scheduler for
 * --cron) on the control queue, which every host worker consumes: they survive restarts
 * of every Ferry process, and fire on whichever worker is up.
 */
export class Schedules {
  private readonly queue: Queue;

  constructor(connection: IORedis, prefix: string) {
    this.queue = new Queue(CONTROL_QUEUE, { connection, prefix });
  }

  async at(when: Date, data: DrainJobData): Promise<string> {
    const delay = when.getTime() - Date.now();
    if (!Number.isFinite(delay)) throw new ValidationError('invalid --at time: use ISO 8601, e.g. 2026-12-01T02:00Z');
    if (delay < 0) throw new ValidationError(`--at ${when.toISOString()} is in the past`);
    const id = `s-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    await this.queue.add('drain', data, { jobId: id, delay, removeOnComplete: { age: 30 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } });
    return id;
  }

  async cron(pattern: string, data: DrainJobData): Promise<string> {
    const id = `c-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    try {
      await this.queue.upsertJobScheduler(id, { pattern, tz: 'UTC' }, { name: 'drain', data, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } });
    } catch (e: unknown) {
      throw new ValidationError(`invalid --cron "${pattern}": ${(e as Error).message}`, e);
    }
    return id;
  }

  async list(): Promise<ScheduleView[]> {
    const out: ScheduleView[] = [];
    for (const s of await this.queue.getJobSchedulers()) {
      const data = (s.template?.data ?? {}) as Partial<DrainJobData>;
      out.push({ id: s.key, kind: 'cron', host: String(data.host ?? '?'), to: data.to, pattern: s.pattern ?? undefined, next: s.next ?? null });
    }
    for (const j of await this.queue.getDelayed()) {
      if (j.name !== 'drain' || !j.id || j.id.startsWith('repeat:')) continue;
      const data = j.data as Partial<DrainJobData>;
      out.push({ id: j.id, kind: 'at', host: String(data.host ?? '?'), to: data.to, next: j.timestamp + (j.opts.delay ?? 0) });
    }
    return out.sort((a, b) => (a.next ?? Infinity) - (b.next ?? Infinity));
  }

  async cancel(id: string): Promise<boolean> {
    if (id.startsWith('c-')) return this.queue.removeJobScheduler(id);
    const job = await this.queue.getJob(id);
    if (!job || !(await job.isDelayed())) return false;
    await job.remove();
    return true;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
