import type { Command } from 'commander';
import type { CliContext } from '../context';
import { startDashboard } from '../../dashboard/server';
import { createLogger } from '../../log';

export function registerDashboard(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description('serve the web dashboard, its JSON API, /metrics and Bull Board (/queues) until SIGINT/SIGTERM')
    .option('--port <n>', 'port (default: dashboard.port, 8377); 0 picks a free one', (v) => Number(v))
    .option('--host <address>', 'address to listen on (default: dashboard.host, 127.0.0.1); not loopback needs a token or basic auth')
    .option('--read-only', 'look but do not act: no retry button, Bull Board read-only')
    .action(async (opts: { port?: number; host?: string; readOnly?: boolean }, cmd: Command) => {
      const config = ctx.configFrom(cmd);
      const log = createLogger(config.log.level, { component: 'dashboard' });
      const dash = await startDashboard({
        config,
        host: opts.host ?? config.dashboard.host,
        port: opts.port ?? config.dashboard.port,
        readOnly: opts.readOnly === true || config.dashboard.readOnly,
        log,
      });
      // On stdout and alone on its line: scripts (and the tests) wait for it.
      ctx.io.out(`dashboard listening on ${dash.url}${opts.readOnly || config.dashboard.readOnly ? ' (read-only)' : ''}`);
      await new Promise<void>((resolve) => {
        const stop = () => void dash.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
