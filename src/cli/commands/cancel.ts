import type { Command } from 'commander';
import type { CliContext } from '../context';
import { lazy } from './lazy';

export function registerCancel(program: Command, ctx: CliContext): void {
  program
    .command('cancel')
    .description('cancel a migration or a batch (b-...): queued ones never start; once a container is frozen its migration finishes or rolls back')
    .argument('<id>', 'migration id')
    .action(lazy(ctx, async () => (await import('../actions/cancel')).cancel));
}
