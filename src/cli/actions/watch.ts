import type { Command } from 'commander';
import type { CliContext } from '../context';
import { EXIT, outcomeCode } from '../exitCodes';
import { watchAll, watchOne } from '../watch';

export async function watch(ctx: CliContext, id: string | undefined, opts: { untilIdle?: boolean; plain?: boolean }, cmd: Command): Promise<void> {
  const client = ctx.clientFor(ctx.configFrom(cmd));
  const screen = process.stdout.isTTY && opts.plain !== true;
  // Following everything ends on Ctrl-C, cleanly; one migration just ends with the process.
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  if (!id) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const o = {
    client,
    out: ctx.io.out,
    screen,
    color: screen && !process.env.NO_COLOR,
    width: () => process.stdout.columns ?? 120,
    untilIdle: opts.untilIdle === true,
    signal: abort.signal,
  };
  try {
    if (!id) {
      await watchAll(o);
      return;
    }
    const final = await watchOne(id, o);
    if (!final) {
      ctx.io.err(`ferry: no migration with id "${id.slice(0, 80)}"`);
      ctx.setCode(EXIT.usage);
      return;
    }
    ctx.setCode(outcomeCode(final));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}
