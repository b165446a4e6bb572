import type { Command } from 'commander';
import type { CliContext } from '../context';
import { EXIT } from '../exitCodes';

export async function listSchedules(ctx: CliContext, opts: { json?: boolean }, c: Command): Promise<void> {
  const client = ctx.clientFor(ctx.configFrom(c));
  try {
    const list = await client.schedules().list();
    if (opts.json) ctx.io.out(JSON.stringify(list, null, 2));
    else if (!list.length) ctx.io.out('no scheduled drains');
    else for (const s of list) ctx.io.out(`${s.id}  drain ${s.host}${s.to ? ` -> ${s.to.join(',')}` : ''}  ${s.kind === 'cron' ? `cron "${s.pattern}" ` : ''}next ${s.next ? new Date(s.next).toISOString() : '-'}`);
  } finally {
    await client.close();
  }
}

export async function cancelSchedule(ctx: CliContext, id: string, _o: unknown, c: Command): Promise<void> {
  const client = ctx.clientFor(ctx.configFrom(c));
  try {
    if (await client.schedules().cancel(id)) ctx.io.out(`schedule ${id} cancelled`);
    else {
      ctx.io.err(`ferry: no pending schedule "${id.slice(0, 80)}"`);
      ctx.setCode(EXIT.usage);
    }
  } finally {
    await client.close();
  }
}
