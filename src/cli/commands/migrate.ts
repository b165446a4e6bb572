import type { Command } from 'commander';
import type { CliContext } from '../context';
import { formatEvent, formatRecord } from '../render';
import { parseProbe } from '../probe';
import { outcomeCode } from '../exitCodes';
import { intOption } from '../options';

export function registerMigrate(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description('migrate one running container to another host')
    .argument('<container>', 'container name on the source host')
    .requiredOption('--from <host>', 'source host (inventory name)')
    .requiredOption('--to <host>', 'destination host (inventory name)')
    .option('--probe <spec>', 'health check on the destination: auto | none | tcp:PORT | http:PORT[/PATH] | exec:CMD', 'auto')
    .option('--wait', 'follow progress until the migration ends; exit 0 only if it succeeded')
    .option('--timeout <seconds>', 'with --wait: give up waiting after this long', intOption(1, 365 * 86_400))
    .option('--json', 'print JSON instead of text')
    .action(async (container: string, opts: { from: string; to: string; probe: string; wait?: boolean; json?: boolean; timeout?: number }, cmd: Command) => {
      const probe = parseProbe(opts.probe);
      const client = ctx.clientFor(ctx.configFrom(cmd));
      try {
        const rec = await client.migrate({ container, from: opts.from, to: opts.to, probe });
        if (!opts.wait) {
          ctx.io.out(opts.json ? JSON.stringify({ id: rec.id }) : rec.id);
          return;
        }
        if (!opts.json) ctx.io.out(`migration ${rec.id}: ${container} ${opts.from} -> ${opts.to}`);
        const final = await client.follow(
          rec.id,
          (ev) => {
            if (!opts.json) ctx.io.out(formatEvent(ev, rec.createdAt));
          },
          { timeoutMs: opts.timeout ? opts.timeout * 1000 : undefined },
        );
        ctx.io.out(opts.json ? JSON.stringify(final) : formatRecord(final));
        ctx.setCode(outcomeCode(final));
      } finally {
        await client.close();
      }
    });
}
