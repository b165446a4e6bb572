import type { MigrationEvent, MigrationRecord } from '../engine/model';

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
    `  state:   ${rec.state}${rec.state === 'running' || rec.state === 'rolling-back' ? ` (step ${rec.step})` : ''}`,
    `  created: ${new Date(rec.createdAt).toISOString()}${rec.finishedAt ? `, finished after ${((rec.finishedAt - rec.createdAt) / 1000).toFixed(1)} s` : ''}`,
  ];
  if (rec.archive) lines.push(`  archive: ${formatBytes(rec.archive.bytes)} sha256 ${rec.archive.sha256.slice(0, 16)}…`);
  if (rec.frozenAt && rec.answeredAt) lines.push(`  downtime: ${rec.answeredAt - rec.frozenAt} ms (frozen until answering on ${rec.to})`);
  if (rec.error) lines.push(`  error:   ${rec.error}`);
  for (const w of rec.warnings) lines.push(`  warning: ${w}`);
  for (const h of rec.history) {
    const ms = h.finishedAt ? `${h.finishedAt - h.startedAt} ms` : 'running';
    lines.push(`  - ${h.step.padEnd(10)} on ${h.host} attempt ${h.attempt}: ${h.ok === undefined ? 'running' : h.ok ? 'ok' : 'failed'} (${ms})${h.error ? ` ${h.error}` : ''}`);
  }
  return lines.join('\n');
}
