import type { Command } from 'commander';
import type { CliContext } from '../context';
import { startDashboard } from '../../dashboard/server';
import { createLogger } from '../../log';

export async function dashboard(ctx: CliContext, opts: { port?: number; host?: string; readOnly?: boolean; bullBoardWrite?: boolean }, cmd: Command): Promise<void> {
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
}
