import type { Readable, Writable } from 'node:stream';

export interface RunOptions {
  /** Data for the command's standard input. */
  stdin?: Readable | string;
  /** When set, stdout is piped here instead of being collected. */
  stdout?: Writable;
  timeoutMs?: number;
  /**
   * Stops the command when aborted: a local process gets SIGTERM, then SIGKILL; a remote
   * one is signalled through SSH and its channel closed. Already aborted: nothing runs.
   */
  signal?: AbortSignal;
  /**
   * Not stopped by the signal an `abortable` runner adds (a superseded or stopped step
   * attempt), only by its own time limit and the caller's own signal: for a command that, cut
   * off half-way, leaves worse than it found. podman killed during an in-place restore leaves
   * the container running under its runtime, outside podman's sight, where no one may kill it.
   */
  uninterruptible?: boolean;
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs an argument vector somewhere: on this host, or on another one over SSH. Callers
 * never build a command string; the runner decides how arguments travel safely.
 */
export interface CommandRunner {
  /** Human-readable place, e.g. "host b (198.18.0.12)", for messages. */
  readonly where: string;
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult>;
}

/** Quotes one argument for a POSIX shell (what sshd hands the command line to). */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_/.,:=+@%-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** How long a command told to stop gets before it is killed outright. */
export const KILL_GRACE_MS = 3000;

/**
 * A runner whose every command stops when `signal` aborts: what a step attempt runs through,
 * so that an attempt that is abandoned (time limit, lost job lock, superseded) leaves no
 * podman, CRIU or SSH command of its own running beside the next attempt.
 */
export function abortable(runner: CommandRunner, signal: AbortSignal, unfinished?: Set<Promise<unknown>>): CommandRunner {
  return {
    where: runner.where,
    run(argv, opts = {}) {
      // Uninterruptible once started, but an attempt already stopped starts nothing. Whoever
      // passed `unfinished` waits for what is in it before the next attempt may act.
      if (opts.uninterruptible && !signal.aborted) {
        const running = runner.run(argv, opts);
        if (unfinished) {
          const tracked: Promise<unknown> = running.then(
            () => unfinished.delete(tracked),
            () => unfinished.delete(tracked),
          );
          unfinished.add(tracked);
        }
        return running;
      }
      const signals = opts.signal ? AbortSignal.any([signal, opts.signal]) : signal;
      return runner.run(argv, { ...opts, signal: signals });
    },
  };
}

/** The same runner, every command under a time limit unless it brings its own. */
export function limited(runner: CommandRunner, ms: number): CommandRunner {
  return { where: runner.where, run: (argv, opts) => runner.run(argv, { timeoutMs: ms, ...opts }) };
}
