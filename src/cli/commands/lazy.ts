import type { CliContext } from '../context';

/**
 * A command's action, loaded when that command runs: commander needs every command's name,
 * arguments, options and description at start, but not the code behind them, which brings
 * BullMQ, ioredis, node-ssh, express... and would make `ferry --help` pay for all of it.
 * The action's own parameters type the arguments and options, in one place.
 */
export function lazy<A extends unknown[]>(ctx: CliContext, load: () => Promise<(ctx: CliContext, ...args: A) => Promise<void>>): (...args: A) => Promise<void> {
  return async (...args) => {
    const run = await load();
    await run(ctx, ...args);
  };
}
