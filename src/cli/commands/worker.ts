import type { Command } from 'commander';
import type { CliContext } from '../context';
import { createLogger } from '../../log';
import { HostWorker } from '../../../workers/hostWorker';

export function registerWorker(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description("run this host's worker: consumes the host's queue until SIGINT/SIGTERM")
    .requiredOption('--host <name>', 'which inventory host this machine is')
    .action(async (opts: { host: string }, cmd: Command) => {
      const config = ctx.configFrom(cmd);
      const log = createLogger(config.log.level, { host: opts.host });
      const worker = new HostWorker({ config, host: opts.host, log });
      worker.on('error', (e: Error) => log.error({ err: e.message }, 'worker error'));
      try {
        await worker.start();
      } catch (e: unknown) {
        // A worker that refuses to serve (e.g. Redis may evict keys) must exit, not linger connected.
        await worker.close();
        throw e;
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
    });
}
