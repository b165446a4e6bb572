import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { CliContext } from '../context';
import { TERMINAL_STATES } from '../../engine/model';
import { RecordCache } from '../../monitor/records';
import { formatHistoryRow } from '../render';
import { intOption } from '../options';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "90m", "12h", "7d" (that long ago) or an ISO date/time; returns ms since epoch. */
export function parseSince(text: string, now = Date.now()): number {
  const rel = /^(\d+)([smhdw])$/.exec(text.trim());
  if (rel) return now - Number(rel[1]) * UNITS[rel[2]];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new InvalidArgumentError('use a duration like 30m, 12h, 7d, or an ISO date such as 2026-01-31T12:00:00Z');
  return t;
}

export function registerHistory(program: Command, ctx: CliContext): void {
  program
    .command('history')
    .description('migrations that ended, newest first, with their outcome, duration, downtime and bytes')
    .option('--since <when>', 'only those created since: 30m, 12h, 7d, or an ISO date', (v) => parseSince(v))
    .option('--all', 'include migrations still queued or running')
    .option('--limit <n>', 'at most this many', intOption(1, 1_000_000), 100)
    .option('--json', 'print JSON (an array of migration records)')
    .action(async (opts: { since?: number; all?: boolean; limit: number; json?: boolean }, cmd: Command) => {
      const client = ctx.clientFor(ctx.configFrom(cmd));
      try {
        const all = await new RecordCache(client.redis, client.config.redis.prefix).all();
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
    });
}
