import type { Command } from 'commander';
import type { CliContext } from '../context';
import { lazy } from './lazy';

export function registerWorker(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description("run this host's worker: consumes the host's queue until SIGINT/SIGTERM")
    .requiredOption('--host <name>', 'which inventory host this machine is')
    .action(lazy(ctx, async () => (await import('../actions/worker')).runWorker));
}
