import type { Command } from 'commander';
import type { FerryClient } from '../client';
import type { FerryConfig } from '../config/load';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** What every command module gets: output, the exit code, and how to reach config and Redis. */
export interface CliContext {
  io: Io;
  setCode(n: number): void;
  configFrom(cmd: Command): FerryConfig;
  clientFor(config: FerryConfig): FerryClient;
}
