import type { Command } from 'commander';
import type { CliContext } from '../context';
import { checkHostName } from '../../names';
import { parallelOption } from '../options';
import { lazy } from './lazy';

function hostList(v: string): string[] {
  return v
    .split(',')
    .filter(Boolean)
    .map((h) => checkHostName(h.trim()));
}

export function registerDrain(program: Command, ctx: CliContext): void {
  program
    .command('drain')
    .description('empty a host: cordon it, place every container on the other hosts by capacity, and migrate them as a batch')
    .argument('<host>', 'host to drain')
    .option('--to <hosts>', 'comma-separated destinations (default: every other host)', hostList)
    .option('--max-parallel <n>', 'migrations at once (default: config fleet.maxParallel)', parallelOption)
    .option('--per-host <n>', 'migrations at once involving one host (default: config fleet.perHostLimit)', parallelOption)
    .option('--dry-run', 'print the plan and change nothing')
    .option('--at <time>', 'schedule it once, at an ISO 8601 time (e.g. 2026-12-01T02:00Z)')
    .option('--cron <pattern>', 'schedule it repeatedly (cron pattern, UTC), e.g. "0 2 * * 6"')
    .option('--wait', 'follow the drain and print a summary; exit 0 only if every migration succeeded')
    .option('--json', 'print JSON')
    .action(lazy(ctx, async () => (await import('../actions/drain')).drain));

  program
    .command('undrain')
    .description('uncordon a host; with --move-back, migrate back what its last drain moved away')
    .argument('<host>', 'host to uncordon')
    .option('--move-back', 'migrate back the containers the last drain moved (those still where it put them)')
    .option('--wait', 'with --move-back: follow the batch')
    .action(lazy(ctx, async () => (await import('../actions/drain')).undrain));
}
