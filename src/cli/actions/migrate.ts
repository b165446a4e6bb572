import type { Command } from 'commander';
import type { CliContext } from '../context';
import { formatEvent, formatRecord } from '../render';
import { parseProbe } from '../probe';
import { outcomeCode } from '../exitCodes';
import type { MemoryCopy } from '../../engine/model';

export async function migrate(ctx: CliContext, container: string, opts: { from: string; to: string; probe: string; memoryCopy?: string; wait?: boolean; json?: boolean; timeout?: number }, cmd: Command): Promise<void> {
  const probe = parseProbe(opts.probe);
  const client = ctx.clientFor(ctx.configFrom(cmd));
  try {
    const rec = await client.migrate({ container, from: opts.from, to: opts.to, probe, memoryCopy: opts.memoryCopy as MemoryCopy | undefined });
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
}
