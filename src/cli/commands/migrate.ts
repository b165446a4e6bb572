import type { Command } from 'commander';
import type { CliContext } from '../context';
import { intOption } from '../options';
import { lazy } from './lazy';

export function registerMigrate(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description('migrate one running container to another host')
    .argument('<container>', 'container name on the source host')
    .requiredOption('--from <host>', 'source host (inventory name)')
    .requiredOption('--to <host>', 'destination host (inventory name)')
    .option('--probe <spec>', 'health check on the destination: auto | none | tcp:PORT | http:PORT[/PATH] | exec:CMD', 'auto')
    .option('--memory-copy <mode>', 'how memory moves: plain (in the archive, while frozen) | post-copy (runs on the destination at once, pages follow) | auto (default: checkpoint.memoryCopy)')
    .option('--wait', 'follow progress until the migration ends; exit 0 only if it succeeded')
    .option('--timeout <seconds>', 'with --wait: give up waiting after this long', intOption(1, 365 * 86_400))
    .option('--json', 'print JSON instead of text')
    .action(lazy(ctx, async () => (await import('../actions/migrate')).migrate));
}
