import type { FerryClient } from '../client';
import { endsOn } from '../engine/states';
import type { BatchView } from '../fleet/model';
import { follow, lastEventId } from '../store/eventStream';
import { keys } from '../store/keys';
import { formatBytes } from './render';

export function batchLine(v: BatchView): string {
  const c = v.counts;
  return `batch ${v.batch.id} (${v.batch.kind}${v.batch.drainHost ? ` of ${v.batch.drainHost}` : ''}): ${c.done} done, ${c.running} running, ${c.failed} failed, ${c.remaining} remaining, ${formatBytes(c.bytes) || '0 B'} moved`;
}

export function batchSummary(v: BatchView): string {
  const lines = [`${batchLine(v)} -> ${v.batch.state}`];
  for (const { item, migration: m } of v.items) {
    const end = m ? endsOn(m.state) : undefined;
    const where = end === 'destination' ? `now on ${item.to}` : end === 'source' ? `still on ${item.from}` : end === 'unknown' ? 'NEEDS ATTENTION' : `on ${item.from}`;
    lines.push(`  ${item.container.padEnd(24)} ${item.from} -> ${item.to}  ${(m?.state ?? (v.batch.cancelRequested ? 'not started (cancelled)' : 'waiting')).padEnd(24)} ${where}${m?.error ? `: ${m.error}` : ''}`);
  }
  for (const s of v.batch.stopped ?? []) lines.push(`  ${s.padEnd(24)} stopped on ${v.batch.drainHost} (label ferry.on-drain=stop)`);
  for (const s of v.batch.skipped ?? []) lines.push(`  ${s.container.padEnd(24)} left on ${v.batch.drainHost}: ${s.reason}`);
  return lines.join('\n');
}

/**
 * Follows a batch by blocking reads of the global event stream (no polling of our own):
 * prints what happens to its migrations, and a totals line whenever one ends.
 */
export async function followBatch(client: FerryClient, batchId: string, print: (s: string) => void): Promise<BatchView> {
  const stream = keys(client.config.redis.prefix).events;
  // The stream position is taken before the batch is read, so no event falls in between.
  const start = await lastEventId(client.redis, stream);
  let view = await client.batches.view(batchId);
  if (!view) throw new Error(`batch ${batchId} not found`);
  const names = new Map(view.items.map((i) => [i.item.migrationId, i.item.container]));
  print(batchLine(view));
  if (view.batch.state !== 'running') return view;
  const events = follow(client.redis, stream, start);
  try {
    for await (const batch of events) {
      let ended = false;
      for (const { event: ev } of batch) {
        const name = names.get(ev.migrationId);
        if (!name) continue;
        if (ev.type === 'step-started') print(`  ${name}: ${ev.step} on ${ev.host}`);
        if (ev.type === 'step-failed') print(`  ${name}: ${ev.step} FAILED on ${ev.host}: ${ev.message}`);
        if (ev.type === 'state') {
          print(`  ${name}: => ${ev.state}${ev.message ? `: ${ev.message}` : ''}`);
          ended = true;
        }
      }
      view = (await client.batches.view(batchId)) ?? view;
      if (ended) print(batchLine(view));
      if (view.batch.state !== 'running') break;
    }
  } finally {
    events.stop();
  }
  return view;
}
