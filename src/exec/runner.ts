import type { Readable, Writable } from 'node:stream';

export interface RunOptions {
  /** Data for the command's standard input. */
  stdin?: Readable | string;
  /** When set, stdout is piped here instead of being collected. */
  stdout?: Writable;
  timeoutMs?: number;
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
  if (/^[A-Za-z0-9_\/.,:=+@%-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
