import type { Command } from 'commander';
import type { CliContext } from '../context';
import { lazy } from './lazy';

export function registerWatch(program: Command, ctx: CliContext): void {
  program
    .command('watch')
    .description('follow running migrations live: a progress view on a terminal, one line per event otherwise')
    .argument('[id]', 'follow only this migration, until it ends (exit 0 only if it succeeded)')
    .option('--until-idle', 'without an id: stop once no migration is queued or running')
    .option('--plain', 'print lines even on a terminal')
    .action(lazy(ctx, async () => (await import('../actions/watch')).watch));
}
