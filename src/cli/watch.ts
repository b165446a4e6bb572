import type { FerryClient } from '../client';
import { MigrationEvent, MigrationRecord, TERMINAL_STATES } from '../engine/model';
import { Monitor } from '../monitor/monitor';
import { migrationView, MigrationView } from '../monitor/view';
import { follow, lastEventId } from '../store/eventStream';
import { keys } from '../store/keys';
import { formatFinalLine, formatWatchLine, renderWatchScreen, ScreenRow } from './render';

export interface WatchOptions {
  client: FerryClient;
  out: (s: string) => void;
  /** Redraw a full screen (terminal) instead of printing one line per event. */
  screen: boolean;
  color: boolean;
  width: () => number;
  /** Without an id: stop once nothing is queued or running. */
  untilIdle: boolean;
  signal: AbortSignal;
}

const REDRAW_MS = 1000;
/** Finished migrations the screen keeps showing below the running ones. */
const RECENT_ROWS = 15;

/** Finer progress than the record has: the latest progress event of each migration's current step. */
type Live = Map<string, { step: string; percent?: number; bytes?: number; totalBytes?: number }>;

function noteProgress(live: Live, ev: MigrationEvent): void {
  if (!ev.step) return;
  const cur = live.get(ev.migrationId);
  const same = cur?.step === ev.step;
  live.set(ev.migrationId, {
    step: ev.step,
    percent: ev.percent ?? (same ? cur?.percent : undefined),
    bytes: ev.bytes ?? (same ? cur?.bytes : undefined),
    totalBytes: ev.totalBytes ?? (same ? cur?.totalBytes : undefined),
  });
}

function row(v: MigrationView, live: Live): ScreenRow {
  const l = live.get(v.id);
  const fresh = l?.step === v.step && v.category === 'running';
  return {
    id: v.id,
    container: v.container,
    from: v.from,
    to: v.to,
    state: v.state,
    step: v.step,
    percent: fresh && l.percent !== undefined ? Math.max(v.percent, l.percent) : v.percent,
    bytes: fresh && l.bytes !== undefined ? l.bytes : v.bytes,
    totalBytes: fresh ? l.totalBytes : undefined,
    elapsedMs: v.elapsedMs,
    error: v.error,
  };
}

function waitOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/** Follows one migration to its end; returns its final record (null if it does not exist). */
export async function watchOne(id: string, o: WatchOptions): Promise<MigrationRecord | null> {
  const first = await o.client.get(id);
  if (!first) return null;
  const live: Live = new Map();
  let rec = first;
  const draw = () => {
    const v = migrationView(rec);
    o.out(`\x1b[H\x1b[2J${renderWatchScreen({ title: `ferry watch ${id}`, rows: [row(v, live)], batches: [], counts: { [v.category]: 1 }, color: o.color, width: o.width() })}`);
  };
  let timer: NodeJS.Timeout | undefined;
  if (o.screen) {
    timer = setInterval(() => {
      void o.client.get(id).then((r) => {
        if (r) rec = r;
        draw();
      });
    }, REDRAW_MS);
  }
  try {
    const final = await o.client.follow(id, (ev) => {
      noteProgress(live, ev);
      if (!o.screen) o.out(formatWatchLine(first, ev));
    });
    rec = final;
    if (o.screen) draw();
    o.out(formatFinalLine(final));
    return final;
  } finally {
    clearInterval(timer);
  }
}

/** Follows every migration under the prefix until aborted (or idle, with untilIdle). */
export async function watchAll(o: WatchOptions): Promise<void> {
  const { client } = o;
  const monitor = new Monitor(client.config, client.redis);
  const prefix = client.config.redis.prefix;
  const stream = keys(prefix).events;
  const live: Live = new Map();
  const known = new Map<string, MigrationRecord>();
  // The stream position is taken before the records are read, so no event falls in between.
  const start = await lastEventId(client.redis, stream);
  const active = (await monitor.records.all()).filter((r) => !TERMINAL_STATES.has(r.state));
  for (const r of active) known.set(r.id, r);
  if (!o.screen) {
    for (const r of active) o.out(`${new Date().toISOString()} ${r.id} ${r.container} ${r.from}->${r.to} ${r.state}${r.state === 'running' ? ` at ${r.step}` : ''}`);
    if (active.length === 0) o.out(`${new Date().toISOString()} no migration running`);
  }
  if (o.untilIdle && active.length === 0) return;

  let idle = false;
  let pending: Promise<void> = Promise.resolve();
  const handle = async (ev: MigrationEvent): Promise<void> => {
    noteProgress(live, ev);
    let rec = known.get(ev.migrationId);
    if (!rec) {
      rec = (await client.get(ev.migrationId)) ?? undefined;
      if (!rec) return;
      known.set(rec.id, rec);
    }
    if (!o.screen) o.out(formatWatchLine(rec, ev));
    if (ev.type === 'state' && ev.state && TERMINAL_STATES.has(ev.state)) {
      const final = await client.get(ev.migrationId);
      if (final && !o.screen) o.out(formatFinalLine(final));
      known.delete(ev.migrationId);
      if (o.untilIdle && (await monitor.records.all()).every((r) => TERMINAL_STATES.has(r.state))) idle = true;
    }
  };
  // A failed read (Redis restarting) is tried again a second later: watching goes on.
  const events = follow(client.redis, stream, start, { onError: () => undefined });
  const reading = (async () => {
    for await (const batch of events) {
      for (const e of batch) pending = pending.then(() => handle(e.event));
    }
  })();
  try {
    while (!o.signal.aborted && !idle) {
      if (o.screen) {
        const ov = await monitor.overview({ readOnly: true });
        const moving = ov.migrations.filter((v) => v.category === 'running' || v.category === 'queued');
        const recent = ov.migrations.filter((v) => v.category === 'done' || v.category === 'failed').slice(0, RECENT_ROWS);
        const rows = [...moving, ...recent].map((v) => row(v, live));
        o.out(`\x1b[H\x1b[2J${renderWatchScreen({ title: `ferry watch (${prefix})`, rows, batches: [...ov.batches, ...ov.drains], counts: ov.counts, color: o.color, width: o.width() })}`);
        if (o.untilIdle && moving.length === 0) idle = true;
      }
      await waitOrAbort(REDRAW_MS, o.signal);
    }
  } finally {
    events.stop();
    await reading;
    await pending;
    await monitor.close();
  }
}
