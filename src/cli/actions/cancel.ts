import type { Command } from 'commander';
import type { CliContext } from '../context';
import { FerryError } from '../../errors';
import { batchSummary } from '../batchView';
import { BATCH_ID } from '../../fleet/model';

export async function cancel(ctx: CliContext, id: string, _opts: unknown, cmd: Command): Promise<void> {
  const client = ctx.clientFor(ctx.configFrom(cmd));
  try {
    if (BATCH_ID.test(id)) {
      const b = await client.cancelBatch(id);
      if (!b) throw new FerryError(`no batch with id "${id.slice(0, 80)}"`, { code: 'NOT_FOUND', permanent: true });
      const view = await client.batches.view(id);
      ctx.io.out(view ? batchSummary(view) : `${b.id}: ${b.state}`);
      return;
    }
    const rec = await client.cancel(id);
    ctx.io.out(`${rec.id}: ${rec.state}${rec.cancelRequested ? ' (cancel requested)' : ''}`);
  } finally {
    await client.close();
  }
}
