import type { Command } from 'commander';
import type { CliContext } from '../context';
import { startDashboard } from '../../dashboard/server';
import { createLogger } from '../../log';
import { intOption } from '../options';

export function registerDashboard(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description('serve the web dashboard, its JSON API, /metrics and Bull Board (/queues) until SIGINT/SIGTERM')
    .option('--port <n>', 'port (default: dashboard.port, 8377); 0 picks a free one', intOption(0, 65535))
    .option('--host <address>', 'address to listen on (default: dashboard.host, 127.0.0.1); not loopback needs a token or basic auth')
    .option('--read-only', 'look but do not act: no retry button, Bull Board read-only')
    .option('--bull-board-write', 'let Bull Board pause, empty and clean queues and add or remove jobs, which can strand a frozen container (default: dashboard.bullBoardWrite, off); not with --read-only')
    .action(async (opts: { port?: number; host?: string; readOnly?: boolean; bullBoardWrite?: boolean }, cmd: Command) => {
      const config = ctx.configFrom(cmd);
      const log = createLogger(config.log.level, { component: 'dashboard' });
      const readOnly = opts.readOnly === true || config.dashboard.readOnly;
      const dash = await startDashboard({
        config,
        host: opts.host ?? config.dashboard.host,
        port: opts.port ?? config.dashboard.port,
        readOnly,
        bullBoardWrite: opts.bullBoardWrite === true || config.dashboard.bullBoardWrite,
        log,
      });
      // Printed once, before the line below, so whoever waits for that one has it too.
      if (dash.loginUrl) ctx.io.out(`open ${dash.loginUrl} (no dashboard.token or basicAuth configured: this token was made for this run)`);
      // On stdout and alone on its line: scripts (and the tests) wait for it.
      ctx.io.out(`dashboard listening on ${dash.url}${readOnly ? ' (read-only)' : dash.bullBoardWritable ? ' (Bull Board writable)' : ''}`);
      await new Promise<void>((resolve) => {
        const stop = () => void dash.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
