import type { MigrationEvent, MigrationRecord } from '../engine/model';
import { categoryOf } from '../engine/states';
import type { BatchSummary } from '../fleet/model';

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function bar(percent: number, width = 24): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** One line per event: what a person watching wants to read. */
export function formatEvent(ev: MigrationEvent, startedAt: number): string {
  const t = `${((ev.at - startedAt) / 1000).toFixed(1).padStart(6)}s`;
  const pct = ev.percent !== undefined ? `${String(ev.percent).padStart(3)}% ` : '     ';
  switch (ev.type) {
    case 'created':
      return `${t} ${pct}queued`;
    case 'step-started':
      return `${t} ${pct}${ev.step} started on ${ev.host}${ev.attempt && ev.attempt > 1 ? ` (attempt ${ev.attempt})` : ''}`;
    case 'progress': {
      const bytes = ev.bytes !== undefined ? ` ${formatBytes(ev.bytes)}${ev.totalBytes ? ` / ${formatBytes(ev.totalBytes)}` : ''}` : '';
      return `${t} ${pct}${ev.step} ${bar(ev.percent ?? 0)}${bytes}${ev.message ? ` ${ev.message}` : ''}`;
    }
    case 'step-done':
      return `${t} ${pct}${ev.step} done on ${ev.host} in ${ev.durationMs} ms`;
    case 'step-failed':
      return `${t} ${pct}${ev.step} FAILED on ${ev.host} (attempt ${ev.attempt}): ${ev.message}`;
    case 'state':
      return `${t} ${pct}=> ${ev.state}${ev.message ? `: ${ev.message}` : ''}`;
    case 'log':
      return `${t} ${pct}${ev.message ?? ''}`;
  }
}

export function formatRecord(rec: MigrationRecord): string {
  const lines = [
    `migration ${rec.id}: ${rec.container} ${rec.from} -> ${rec.to}`,
    `  state:   ${rec.state}${categoryOf(rec.state) === 'running' ? ` (step ${rec.step})` : ''}`,
    `  created: ${new Date(rec.createdAt).toISOString()}${rec.finishedAt ? `, finished after ${((rec.finishedAt - rec.createdAt) / 1000).toFixed(1)} s` : ''}`,
  ];
  if (rec.archive) lines.push(`  archive: ${formatBytes(rec.archive.bytes)} sha256 ${rec.archive.sha256.slice(0, 16)}…`);
  if (rec.frozenAt && rec.answeredAt) lines.push(`  downtime: ${rec.answeredAt - rec.frozenAt} ms (frozen until answering on ${rec.to})`);
  const memory = formatMemoryCopy(rec);
  if (memory) lines.push(`  memory:  ${memory}`);
  if (rec.error) lines.push(`  error:   ${rec.error}`);
  for (const w of rec.warnings) lines.push(`  warning: ${w}`);
  for (const h of rec.history) {
    const ms = h.finishedAt ? `${h.finishedAt - h.startedAt} ms` : 'running';
    lines.push(`  - ${h.step.padEnd(10)} on ${h.host} attempt ${h.attempt}: ${h.ok === undefined ? 'running' : h.ok ? 'ok' : 'failed'} (${ms})${h.error ? ` ${h.error}` : ''}`);
  }
  return lines.join('\n');
}

/**
 * How the memory moved, and for post-copy the window in which the container needed both hosts
 * (docs/post-copy.md): from the freeze until the destination held every page.
 */
export function formatMemoryCopy(rec: MigrationRecord, now = Date.now()): string {
  const pc = rec.postCopy;
  if (pc?.mode === 'lazy') {
    const pages = pc.lazyPages !== undefined ? `${formatBytes(pc.lazyPages * 4096)} of pages after the restore` : 'pages after the restore';
    if (pc.allPagesAt && rec.frozenAt) return `post-copy: ${pages}; every page on ${rec.to} ${pc.allPagesAt - rec.frozenAt} ms after the freeze (until then ${rec.from} had to stay up)`;
    if (rec.frozenAt && categoryOf(rec.state) === 'running') return `post-copy: ${pages}; copying, ${((now - rec.frozenAt) / 1000).toFixed(1)} s since the freeze (${rec.from} must stay up until every page is on ${rec.to})`;
    return `post-copy: ${pages}`;
  }
  if (rec.memoryCopyReason) return `plain (${rec.memoryCopy ?? 'plain'} was asked: ${rec.memoryCopyReason})`;
  if (pc) return 'post-copy chosen; not frozen yet';
  return rec.memoryCopy && rec.memoryCopy !== 'plain' ? `${rec.memoryCopy} asked` : '';
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** `ferry watch` on a pipe or file: one line per event, naming the migration. */
export function formatWatchLine(rec: Pick<MigrationRecord, 'id' | 'container' | 'from' | 'to' | 'createdAt'>, ev: MigrationEvent): string {
  return `${new Date(ev.at).toISOString()} ${rec.id} ${rec.container} ${rec.from}->${rec.to} ${formatEvent(ev, rec.createdAt).trimStart()}`;
}

/** The last line `ferry watch` prints for a migration: how it ended. */
export function formatFinalLine(rec: MigrationRecord): string {
  const took = rec.finishedAt ? ` after ${formatDuration(rec.finishedAt - rec.createdAt)}` : '';
  const downtime = rec.frozenAt && rec.answeredAt ? `, downtime ${rec.answeredAt - rec.frozenAt} ms` : '';
  const bytes = rec.bytesTransferred !== undefined ? `, ${formatBytes(rec.bytesTransferred)} sent` : '';
  return `${new Date(rec.finishedAt ?? rec.updatedAt).toISOString()} ${rec.id} ${rec.container} ${rec.from}->${rec.to} final: ${rec.state}${took}${downtime}${bytes}${rec.error ? `: ${rec.error}` : ''}`;
}

export interface ScreenRow {
  id: string;
  container: string;
  from: string;
  to: string;
  state: MigrationRecord['state'];
  step: string;
  percent: number;
  bytes?: number;
  totalBytes?: number;
  elapsedMs: number;
  error?: string;
}

const ANSI = { red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', dim: '\x1b[2m', bold: '\x1b[1m', reset: '\x1b[0m' };

function paint(on: boolean, color: keyof typeof ANSI, s: string): string {
  return on ? `${ANSI[color]}${s}${ANSI.reset}` : s;
}

function cut(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n);
}

/** The full-screen view of `ferry watch` on a terminal: a progress bar per migration, batch totals, failures in red. */
export function renderWatchScreen(v: { title: string; rows: ScreenRow[]; batches: BatchSummary[]; counts: Record<string, number>; color: boolean; width: number }): string {
  const c = v.color;
  const out = [
    `${paint(c, 'bold', v.title)}  running ${v.counts.running ?? 0}  queued ${v.counts.queued ?? 0}  done ${v.counts.done ?? 0}  ${paint(c && (v.counts.failed ?? 0) > 0, 'red', `failed ${v.counts.failed ?? 0}`)}`,
    '',
    paint(c, 'dim', `${'MIGRATION'.padEnd(22)} ${'CONTAINER'.padEnd(18)} ${'ROUTE'.padEnd(9)} ${'STEP'.padEnd(10)} ${'PROGRESS'.padEnd(31)} ${'BYTES'.padEnd(20)} ELAPSED`),
  ];
  if (v.rows.length === 0) out.push(paint(c, 'dim', '  no migrations'));
  for (const r of v.rows) {
    const failed = categoryOf(r.state) === 'failed';
    const step = categoryOf(r.state) === 'running' ? r.step : r.state;
    const bytes = r.bytes !== undefined ? `${formatBytes(r.bytes)}${r.totalBytes ? `/${formatBytes(r.totalBytes)}` : ''}` : '';
    let line = `${cut(r.id, 22)} ${cut(r.container, 18)} ${cut(`${r.from}->${r.to}`, 9)} ${cut(step, 10)} ${bar(r.percent)} ${String(r.percent).padStart(3)}% ${cut(bytes, 20)} ${formatDuration(r.elapsedMs)}`;
    line = line.slice(0, Math.max(40, v.width));
    out.push(failed ? paint(c, 'red', line) : r.state === 'succeeded' ? paint(c, 'green', line) : line);
    if (failed && r.error) out.push(paint(c, 'red', `    ${r.error}`.slice(0, Math.max(40, v.width))));
  }
  out.push('', paint(c, 'bold', 'Batches'));
  if (v.batches.length === 0) out.push(paint(c, 'dim', '  none'));
  for (const { batch, counts: n } of v.batches) {
    const total = batch.items.length;
    const pct = total > 0 ? Math.round(((n.done + n.failed) / total) * 100) : 0;
    const line = `  ${cut(`${batch.kind} ${batch.id}`, 30)} ${bar(pct)} ${n.done}/${total} done, ${n.running} running, ${n.remaining} queued, ${n.failed} failed`;
    out.push(n.failed > 0 ? paint(c, 'red', line) : line);
  }
  return out.join('\n');
}

/** One line of `ferry history`. */
export function formatHistoryRow(rec: MigrationRecord): string {
  const took = rec.finishedAt ? formatDuration(rec.finishedAt - rec.createdAt) : 'running';
  const downtime = rec.frozenAt && rec.answeredAt ? `${rec.answeredAt - rec.frozenAt} ms` : '-';
  return `${new Date(rec.createdAt).toISOString()}  ${rec.id}  ${rec.state.padEnd(18)} ${rec.container.padEnd(20)} ${`${rec.from}->${rec.to}`.padEnd(10)} ${took.padEnd(8)} down ${downtime.padEnd(8)} ${formatBytes(rec.bytesTransferred) || '-'}`;
}
