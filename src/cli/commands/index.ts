import type { Command } from 'commander';
import type { CliContext } from '../context';
import { registerArchive } from './archive';
import { registerBatch } from './batch';
import { registerCancel } from './cancel';
import { registerDrain } from './drain';
import { registerHosts } from './hosts';
import { registerSchedules } from './schedules';
import { registerConfig } from './config';
import { registerDashboard } from './dashboard';
import { registerHistory } from './history';
import { registerMigrate } from './migrate';
import { registerStatus } from './status';
import { registerWatch } from './watch';
import { registerWorker } from './worker';

/** Every `ferry` sub-command, one module each. */
export const COMMANDS: ((program: Command, ctx: CliContext) => void)[] = [
  registerMigrate,
  registerStatus,
  registerWatch,
  registerHistory,
  registerDashboard,
  registerCancel,
  registerBatch,
  registerDrain,
  registerSchedules,
  registerHosts,
  registerWorker,
  registerConfig,
  registerArchive,
];
