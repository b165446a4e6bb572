import type { Command } from 'commander';
import type { CliContext } from '../context';
import { TERMINAL_STATES } from '../../engine/model';
import { RecordCache } from '../../monitor/records';
import { formatHistoryRow } from '../render';

export async function history(ctx: CliContext, opts: { since?: number; all?: boolean; limit: number; json?: boolean }, cmd: Command): Promise<void> {
  const client = ctx.clientFor(ctx.configFrom(cmd));
  try {
    const all = await new RecordCache(client.store).all();
    const list = all.filter((r) => (opts.since === undefined || r.createdAt >= opts.since) && (opts.all || TERMINAL_STATES.has(r.state))).slice(0, opts.limit);
    if (opts.json) {
      ctx.io.out(JSON.stringify(list, null, 2));
      return;
    }
    if (list.length === 0) {
      ctx.io.out('no migrations');
      return;
    }
    for (const r of list) ctx.io.out(formatHistoryRow(r));
    const by = new Map<string, number>();
    for (const r of list) by.set(r.state, (by.get(r.state) ?? 0) + 1);
    ctx.io.out(`${list.length} migration${list.length === 1 ? '' : 's'}: ${[...by.entries()].map(([s, n]) => `${n} ${s}`).join(', ')}`);
  } finally {
    await client.close();
  }
}
