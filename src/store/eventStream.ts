import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisConnection as IORedis } from '../redis';
import type { MigrationEvent, MigrationRecord } from '../engine/model';
import { TERMINAL_STATES } from '../engine/states';
import { coerceError, FerryError } from '../errors';

/** The field each stream entry carries its event in (see MigrationStore.event). */
const EVENT_FIELD = 'json';
const BLOCK_MS = 1000;
const COUNT = 500;
const RETRY_MS = 1000;

export interface StreamEvent {
  /** The entry's stream id: where to go on from. */
  id: string;
  event: MigrationEvent;
}

/** The event in a stream entry's field list, found by name; null if it has none. */
export function decodeEvent(fields: readonly string[]): MigrationEvent | null {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === EVENT_FIELD) return JSON.parse(fields[i + 1]) as MigrationEvent;
  }
  return null;
}

/** The id of the newest entry now in the stream, or '0-0' when it is empty: a position to follow from. */
export async function lastEventId(redis: IORedis, stream: string): Promise<string> {
  const rows = await redis.xrevrange(stream, '+', '-', 'COUNT', 1);
  return rows[0]?.[0] ?? '0-0';
}

export interface FollowOptions {
  /** Ends the reading like stop(). */
  signal?: AbortSignal;
  /**
   * Given, a failed read is reported here and tried again a second later (a long-lived
   * reader such as the dashboard's); without it, the iteration throws the error.
   */
  onError?: (e: Error) => void;
  blockMs?: number;
}

/** An event stream being read; iterate it once. */
export interface EventFollower extends AsyncIterable<StreamEvent[]> {
  /** Ends the reading at once (a blocked read included) and closes its connection. Safe to call twice. */
  stop(): void;
}

/**
 * Follows a Redis event stream (key from store/keys: `events` or `migrationEvents(id)`) from
 * `from`: '0' for everything, '$' for only what comes after now, or a stream id. Reads with a
 * blocking XREAD on a connection of its own (a blocked connection can do nothing else) and
 * yields what each read brought: an empty list when a read waited `blockMs` for nothing, so
 * a caller can look at something else now and then. Ends when stopped, or when the caller
 * leaves its loop; the connection is closed either way.
 */
export function follow(redis: IORedis, stream: string, from: string, opts: FollowOptions = {}): EventFollower {
  const conn = redis.duplicate();
  conn.on('error', () => {
    // Reported through the failing read.
  });
  const stopping = new AbortController();
  const stop = () => {
    if (stopping.signal.aborted) return;
    stopping.abort();
    opts.signal?.removeEventListener('abort', stop);
    conn.disconnect();
  };
  if (opts.signal?.aborted) stop();
  else opts.signal?.addEventListener('abort', stop);

  async function* read(): AsyncGenerator<StreamEvent[]> {
    try {
      // '$' is pinned to a real id once: read after read, '$' would skip what arrived between them.
      let last = from === '$' ? null : from;
      while (!stopping.signal.aborted) {
        let res: [string, [string, string[]][]][] | null;
        try {
          last ??= await lastEventId(conn, stream);
          res = await conn.xread('COUNT', COUNT, 'BLOCK', opts.blockMs ?? BLOCK_MS, 'STREAMS', stream, last);
        } catch (e: unknown) {
          if (stopping.signal.aborted) return;
          if (!opts.onError) throw coerceError(e);
          opts.onError(coerceError(e));
          await sleep(RETRY_MS, undefined, { signal: stopping.signal }).catch(() => undefined);
          continue;
        }
        if (stopping.signal.aborted) return;
        const out: StreamEvent[] = [];
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            last = id;
            const event = decodeEvent(fields);
            if (event) out.push({ id, event });
          }
        }
        yield out;
      }
    } finally {
      stop();
    }
  }

  const events = read();
  return { stop, [Symbol.asyncIterator]: () => events };
}

/** A 'state' event saying the migration ended: nothing of it comes after. */
export function isEndEvent(ev: MigrationEvent): boolean {
  return ev.type === 'state' && ev.state !== undefined && TERMINAL_STATES.has(ev.state);
}

export interface FollowMigrationOptions {
  /** Reads the record (MigrationStore.get). */
  get: (id: string) => Promise<MigrationRecord | null>;
  onEvent: (ev: MigrationEvent) => void;
  /** Gives up with WAIT_TIMEOUT after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  blockMs?: number;
}

/**
 * Hands every event of one migration, past and new, to `onEvent` and returns its final
 * record as soon as the event of its end is delivered. A migration that ended without such
 * an event (refused before it began) is found by reading the record whenever a read waits
 * for nothing. NOT_FOUND if there is no record; WAIT_TIMEOUT after `timeoutMs`.
 */
export async function followMigration(redis: IORedis, stream: string, id: string, o: FollowMigrationOptions): Promise<MigrationRecord> {
  const deadline = o.timeoutMs ? Date.now() + o.timeoutMs : Infinity;
  const record = async (): Promise<MigrationRecord> => {
    const rec = await o.get(id);
    if (!rec) throw new FerryError(`migration ${id} not found`, { code: 'NOT_FOUND', permanent: true });
    return rec;
  };
  const events = follow(redis, stream, '0', { signal: o.signal, blockMs: o.blockMs });
  try {
    for await (const batch of events) {
      for (const { event } of batch) {
        o.onEvent(event);
        if (isEndEvent(event)) {
          // The record is written before the event of its end, so it is final here.
          const rec = await record();
          if (TERMINAL_STATES.has(rec.state)) return rec;
        }
      }
      if (batch.length > 0 && Date.now() <= deadline) continue;
      const rec = await record();
      if (batch.length === 0 && TERMINAL_STATES.has(rec.state)) return rec;
      if (Date.now() > deadline) throw new FerryError(`gave up waiting for migration ${id} after ${o.timeoutMs} ms (state: ${rec.state})`, { code: 'WAIT_TIMEOUT' });
    }
  } finally {
    events.stop();
  }
  throw new FerryError(`stopped following migration ${id} before it ended`, { code: 'STOPPED' });
}
