import type { Command } from 'commander';
import type { CliContext } from '../context';
import { readPlan } from '../../fleet/planFile';
import { batchSummary, followBatch } from '../batchView';
import type { FerryClient } from '../../client';
import { EXIT } from '../exitCodes';
import type { BatchView } from '../../fleet/model';

export function batchOutcome(v: BatchView): number {
  return v.batch.state === 'done' && v.counts.failed === 0 && v.counts.remaining === 0 ? EXIT.ok : EXIT.failed;
}

/** Follows a batch to its end, prints the summary and sets the exit code (batch, drain, undrain). */
export async function waitForBatch(ctx: CliContext, client: FerryClient, batchId: string, json = false): Promise<void> {
  const view = await followBatch(client, batchId, json ? () => undefined : ctx.io.out);
  ctx.io.out(json ? JSON.stringify(view, null, 2) : batchSummary(view));
  ctx.setCode(batchOutcome(view));
}

export async function runBatch(ctx: CliContext, file: string, opts: { maxParallel?: number; perHost?: number; wait?: boolean; json?: boolean }, cmd: Command): Promise<void> {
  const config = ctx.configFrom(cmd);
  // Every entry, its hosts included, is checked before the first one is submitted.
  const plan = readPlan(
    file,
    config.hosts.map((h) => h.name),
  );
  const client = ctx.clientFor(config);
  try {
    const batch = await client.batches.create({
      kind: 'batch',
      items: plan.entries,
      maxParallel: opts.maxParallel ?? plan.maxParallel ?? config.fleet.maxParallel,
      perHost: opts.perHost ?? plan.perHost ?? config.fleet.perHostLimit,
    });
    if (!opts.wait) {
      ctx.io.out(opts.json ? JSON.stringify({ id: batch.id }) : batch.id);
      return;
    }
    await waitForBatch(ctx, client, batch.id, opts.json);
  } finally {
    await client.close();
  }
}

export async function showBatches(ctx: CliContext, id: string | undefined, opts: { json?: boolean }, cmd: Command): Promise<void> {
  const client = ctx.clientFor(ctx.configFrom(cmd));
  try {
    if (id) {
      await client.batches.reconcile(id);
      const view = await client.batches.view(id);
      if (!view) {
        ctx.io.err(`ferry: no batch with id "${id.slice(0, 80)}"`);
        ctx.setCode(EXIT.usage);
        return;
      }
      ctx.io.out(opts.json ? JSON.stringify(view, null, 2) : batchSummary(view));
      return;
    }
    const list = await client.batchStore.list();
    if (opts.json) ctx.io.out(JSON.stringify(list, null, 2));
    else if (!list.length) ctx.io.out('no batches yet');
    else for (const b of list) ctx.io.out(`${b.id}  ${b.kind.padEnd(5)} ${b.state.padEnd(9)} ${b.items.length} migrations${b.drainHost ? ` (drain of ${b.drainHost})` : ''}  ${new Date(b.createdAt).toISOString()}`);
  } finally {
    await client.close();
  }
}
