import type { Command } from 'commander';
import type { CliContext } from '../context';
import { lazy } from './lazy';

export function registerSchedules(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('schedules')
    .description('scheduled drains (maintenance windows), kept in Redis by BullMQ')
    .option('--json', 'print JSON')
    .action(lazy(ctx, async () => (await import('../actions/schedules')).listSchedules));
  cmd
    .command('cancel')
    .description('remove a scheduled drain')
    .argument('<id>', 'schedule id')
    .action(lazy(ctx, async () => (await import('../actions/schedules')).cancelSchedule));
}
