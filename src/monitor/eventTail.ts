import type { RedisConnection as IORedis } from '../redis';
import type { MigrationEvent } from '../engine/model';
import { coerceError } from '../errors/coerceError';
import { keys } from '../store/keys';

export interface TailedEvent {
  streamId: string;
  event: MigrationEvent;
}

/**
 * Follows the global event stream `<prefix>:events` with a blocking XREAD on a connection of
 * its own (a blocked connection can do nothing else), and hands each batch to `onEvents`.
 * Starts at `from` ('$': only new events). stop() ends the loop within one block period.
 */
export class EventTail {
  private stopped = false;
  private readonly conn: IORedis;
  private loop: Promise<void> | undefined;

  constructor(
    redis: IORedis,
    private readonly prefix: string,
    private readonly onEvents: (evs: TailedEvent[]) => void,
    private readonly onError: (e: Error) => void = () => undefined,
    private readonly blockMs = 1000,
  ) {
    this.conn = redis.duplicate();
    this.conn.on('error', () => {
      // Reported through the failing XREAD below.
    });
  }

  /** The id of the newest event now in the stream, or '0-0' when it is empty. */
  static async lastId(redis: IORedis, prefix: string): Promise<string> {
    const rows = await redis.xrevrange(keys(prefix).events, '+', '-', 'COUNT', 1);
    return rows[0]?.[0] ?? '0-0';
  }

  start(from = '$'): void {
    this.loop ??= this.run(from);
  }

  private async run(from: string): Promise<void> {
    const key = keys(this.prefix).events;
    let last = from;
    while (!this.stopped) {
      try {
        const res = await this.conn.xread('COUNT', 500, 'BLOCK', this.blockMs, 'STREAMS', key, last);
        const out: TailedEvent[] = [];
        for (const [, entries] of res ?? []) {
          for (const [streamId, fields] of entries) {
            last = streamId;
            const i = fields.indexOf('json');
            if (i >= 0) out.push({ streamId, event: JSON.parse(fields[i + 1]) as MigrationEvent });
          }
        }
        if (out.length > 0) this.onEvents(out);
      } catch (e: unknown) {
        if (this.stopped) break;
        this.onError(coerceError(e));
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.conn.disconnect();
    await this.loop;
  }
}
