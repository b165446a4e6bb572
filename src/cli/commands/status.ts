import type { Command } from 'commander';
import type { CliContext } from '../context';
import { intOption } from '../options';
import { lazy } from './lazy';

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('show one migration, or the most recent ones')
    .argument('[id]', 'migration id')
    .option('--json', 'print JSON')
    .option('--limit <n>', 'how many recent migrations', intOption(1, 1_000_000), 20)
    .action(lazy(ctx, async () => (await import('../actions/status')).status));
}
