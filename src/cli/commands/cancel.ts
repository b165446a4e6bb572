import type { Command } from 'commander';
import type { CliContext } from '../context';

export function registerCancel(program: Command, ctx: CliContext): void {
  program
    .command('cancel')
    .description('cancel a migration: if queued it never starts; once the container is frozen it finishes or rolls back')
    .argument('<id>', 'migration id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const client = ctx.clientFor(ctx.configFrom(cmd));
      try {
        const rec = await client.cancel(id);
        ctx.io.out(`${rec.id}: ${rec.state}${rec.cancelRequested ? ' (cancel requested)' : ''}`);
      } finally {
        await client.close();
      }
    });
}
