import type { Command } from 'commander';
import type { CliContext } from '../context';
import { intOption } from '../options';
import { lazy } from './lazy';

export function registerDashboard(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description('serve the web dashboard, its JSON API, /metrics and Bull Board (/queues) until SIGINT/SIGTERM')
    .option('--port <n>', 'port (default: dashboard.port, 8377); 0 picks a free one', intOption(0, 65535))
    .option('--host <address>', 'address to listen on (default: dashboard.host, 127.0.0.1); not loopback needs a token or basic auth')
    .option('--read-only', 'look but do not act: no retry button, Bull Board read-only')
    .option('--bull-board-write', 'let Bull Board pause, empty and clean queues and add or remove jobs, which can strand a frozen container (default: dashboard.bullBoardWrite, off); not with --read-only')
    .action(lazy(ctx, async () => (await import('../actions/dashboard')).dashboard));
}
