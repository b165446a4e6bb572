import type { Command } from 'commander';
import type { RedisConnection as IORedis } from '../redis';
import type { RedisOptions } from 'ioredis';
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
  /** A bare connection that fails fast and reports why (for commands that need no client). */
  redisFor(config: FerryConfig, extra?: Partial<RedisOptions>): IORedis;
}
