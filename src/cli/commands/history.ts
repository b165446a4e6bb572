import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { CliContext } from '../context';
import { intOption } from '../options';
import { lazy } from './lazy';

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
    .action(lazy(ctx, async () => (await import('../actions/history')).history));
}
