import type { Command } from 'commander';
import type { CliContext } from '../context';
import type { PreparedDrain } from '../../fleet/drain';
import { executeDrain, prepareDrain } from '../../fleet/drain';
import { ValidationError } from '../../errors';
import { checkHostName } from '../../names';
import { waitForBatch } from './batch';

function planText(p: PreparedDrain): string {
  const lines = [`drain plan for ${p.host} (destinations: ${p.destinations.join(', ') || 'none'})`];
  for (const m of p.plan.moves) lines.push(`  move  ${m.container.padEnd(24)} -> ${m.to}  (${m.memoryMb} MB)`);
  for (const s of p.plan.stop) lines.push(`  stop  ${s}  (label ferry.on-drain=stop)`);
  for (const s of p.plan.skip) lines.push(`  keep  ${s.container}: ${s.reason}`);
  for (const u of p.plan.unplaceable) lines.push(`  NO ROOM  ${u.container}: ${u.reason}`);
  for (const e of p.excluded) lines.push(`  (not a destination: ${e.host}, ${e.reason})`);
  if (!p.plan.moves.length && !p.plan.stop.length && !p.plan.unplaceable.length) lines.push('  nothing runs there: nothing to move');
  return lines.join('\n');
}

export async function drain(ctx: CliContext, host: string, opts: { to?: string[]; maxParallel?: number; perHost?: number; dryRun?: boolean; at?: string; cron?: string; wait?: boolean; json?: boolean }, cmd: Command): Promise<void> {
  const config = ctx.configFrom(cmd);
  checkHostName(host);
  if (opts.at && opts.cron) throw new ValidationError('use either --at or --cron, not both');
  const client = ctx.clientFor(config);
  const drainOpts = { host, to: opts.to, maxParallel: opts.maxParallel ?? config.fleet.maxParallel, perHost: opts.perHost ?? config.fleet.perHostLimit };
  try {
    if (opts.at || opts.cron) {
      if (!config.hosts.some((h) => h.name === host)) throw new ValidationError(`unknown host "${host}"`);
      const schedules = client.schedules();
      const data = { host, to: opts.to, maxParallel: drainOpts.maxParallel, perHost: drainOpts.perHost };
      const id = opts.at ? await schedules.at(new Date(opts.at), data) : await schedules.cron(opts.cron ?? '', data);
      ctx.io.out(opts.json ? JSON.stringify({ scheduleId: id }) : `scheduled drain ${id} of ${host}; see \`ferry schedules\``);
      return;
    }
    const deps = client.drainDeps();
    const prepared = await prepareDrain(deps, drainOpts);
    if (opts.dryRun) {
      ctx.io.out(opts.json ? JSON.stringify(prepared, null, 2) : planText(prepared));
      if (prepared.plan.unplaceable.length) ctx.setCode(1);
      return;
    }
    if (!opts.json) ctx.io.out(planText(prepared));
    const batch = await executeDrain(deps, prepared, drainOpts);
    if (!opts.wait) {
      ctx.io.out(opts.json ? JSON.stringify({ id: batch.id }) : `drain started as batch ${batch.id}; ${host} is cordoned`);
      return;
    }
    await waitForBatch(ctx, client, batch.id, opts.json);
  } finally {
    await client.close();
  }
}

export async function undrain(ctx: CliContext, host: string, opts: { moveBack?: boolean; wait?: boolean }, cmd: Command): Promise<void> {
  const config = ctx.configFrom(cmd);
  checkHostName(host);
  if (!config.hosts.some((h) => h.name === host)) throw new ValidationError(`unknown host "${host}"`);
  const client = ctx.clientFor(config);
  try {
    const was = await client.hosts.uncordon(host);
    ctx.io.out(was ? `${host} uncordoned` : `${host} was not cordoned`);
    if (!opts.moveBack) return;
    const last = await client.hosts.lastDrain(host);
    const view = last ? await client.batches.view(last) : null;
    const back = (view?.items ?? []).filter((i) => i.migration?.state === 'succeeded').map((i) => ({ container: i.item.container, from: i.item.to, to: host }));
    if (!back.length) {
      ctx.io.out('nothing to move back');
      return;
    }
    const batch = await client.batches.create({ kind: 'batch', items: back, maxParallel: config.fleet.maxParallel, perHost: config.fleet.perHostLimit });
    ctx.io.out(`moving ${back.length} container(s) back as batch ${batch.id}`);
    if (opts.wait) await waitForBatch(ctx, client, batch.id);
  } finally {
    await client.close();
  }
}
