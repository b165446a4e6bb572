import type { Command } from 'commander';
import type { CliContext } from '../context';
import { registerCancel } from './cancel';
import { registerConfig } from './config';
import { registerMigrate } from './migrate';
import { registerStatus } from './status';
import { registerWorker } from './worker';

/** Every `ferry` sub-command, one module each. */
export const COMMANDS: ((program: Command, ctx: CliContext) => void)[] = [
  registerMigrate,
  registerStatus,
  registerCancel,
  registerWorker,
  registerConfig,
];
