import type { Command } from 'commander';
import type { CliContext } from '../context';
import { lazy } from './lazy';

export function registerConfig(program: Command, ctx: CliContext): void {
  const config = program.command('config').description('configuration');
  config
    .command('check')
    .description('validate the configuration and print it with secrets hidden; checks Redis too unless --offline')
    .option('--offline', 'do not contact Redis')
    .action(lazy(ctx, async () => (await import('../actions/config')).checkConfig));
}
