import type { Command } from 'commander';
import type { CliContext } from '../context';
import { parallelOption } from '../options';
import { lazy } from './lazy';

export function registerBatch(program: Command, ctx: CliContext): void {
  program
    .command('batch')
    .description('run the migrations listed in a plan file (JSON or YAML) with global and per-host limits')
    .argument('<plan>', 'plan file: [{container, from, to, probe?}] or {migrations: [...], maxParallel?, perHost?}')
    .option('--max-parallel <n>', 'migrations at once (default: plan, then config fleet.maxParallel)', parallelOption)
    .option('--per-host <n>', 'migrations at once involving one host (default: plan, then config fleet.perHostLimit)', parallelOption)
    .option('--wait', 'follow the batch and print a summary; exit 0 only if every migration succeeded')
    .option('--json', 'print JSON')
    .action(lazy(ctx, async () => (await import('../actions/batch')).runBatch));

  program
    .command('batches')
    .description('list recent batches and drains, or show one')
    .argument('[id]', 'batch id')
    .option('--json', 'print JSON')
    .action(lazy(ctx, async () => (await import('../actions/batch')).showBatches));
}
