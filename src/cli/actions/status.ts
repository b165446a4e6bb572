import type { Command } from 'commander';
import type { CliContext } from '../context';
import { EXIT } from '../exitCodes';
import { formatRecord } from '../render';

export async function status(ctx: CliContext, id: string | undefined, opts: { json?: boolean; limit: number }, cmd: Command): Promise<void> {
  const client = ctx.clientFor(ctx.configFrom(cmd));
  try {
    if (id) {
      const rec = await client.get(id);
      if (!rec) {
        ctx.io.err(`ferry: no migration with id "${id.slice(0, 80)}"`);
        ctx.setCode(EXIT.usage);
        return;
      }
      ctx.io.out(opts.json ? JSON.stringify(rec, null, 2) : formatRecord(rec));
      return;
    }
    const list = await client.store.list({ limit: opts.limit });
    if (opts.json) ctx.io.out(JSON.stringify(list, null, 2));
    else if (list.length === 0) ctx.io.out('no migrations yet');
    else for (const r of list) ctx.io.out(`${r.id}  ${r.state.padEnd(18)} ${r.container} ${r.from} -> ${r.to}  ${new Date(r.createdAt).toISOString()}`);
  } finally {
    await client.close();
  }
}
