import type { Command } from 'commander';
import type { CliContext } from '../context';
import { redactUrl } from '../../config/load';
import { coerceError } from '../../errors';
import { createLogger } from '../../log';
import { refusedPassword } from '../../redis';
import { HostWorker } from '../../../workers/hostWorker';

export async function runWorker(ctx: CliContext, opts: { host: string }, cmd: Command): Promise<void> {
  const config = ctx.configFrom(cmd);
  const log = createLogger(config.log.level, { host: opts.host });
  const worker = new HostWorker({ config, host: opts.host, log });
  worker.on('error', (e: Error) => log.error({ err: e.message }, 'worker error'));
  try {
    await worker.start();
  } catch (e: unknown) {
    // A worker that refuses to serve (e.g. Redis may evict keys) must exit, not linger connected.
    await worker.close();
    const err = coerceError(e);
    // Which Redis refused, as `ferry config check` says it.
    if (refusedPassword(err)) throw new Error(`${err.message} at ${redactUrl(config.redis.url)}`, { cause: err });
    throw err;
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, 'stopping: letting running steps finish');
      void worker.close().then(() => {
        log.info('worker stopped');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
