import type { Command } from 'commander';
import type { RedisOptions } from 'ioredis';
import { FerryClient } from '../client';
import { FerryConfig, loadConfig, redactUrl } from '../config/load';
import type { RedisConnection as IORedis } from '../redis';
import { createRedis } from '../redis';

// What a command needs to reach config and Redis. Kept out of main.ts because it loads zod,
// convict, ioredis and BullMQ: main.ts loads it only once a command's action runs.

export function configFrom(cmd: Command): FerryConfig {
  const opts = cmd.optsWithGlobals<{ config?: string }>();
  return loadConfig({ file: opts.config });
}

/**
 * A Redis connection for one CLI command: it gives up instead of retrying forever, so a
 * wrong address is an error, not a hang, and it keeps the connection's own error for the
 * message ("max retries" or "Connection is closed" alone hide why, e.g. an untrusted TLS
 * certificate or a refused password).
 */
export function redisFor(config: FerryConfig, extra: Partial<RedisOptions> = {}): IORedis {
  const redis = createRedis(config, {
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
    connectTimeout: 5000,
    // Input is validated before the first command: a rejected request never touches Redis.
    lazyConnect: true,
    ...extra,
  });
  redis.on('error', (e: Error) => {
    // ioredis ends with its own "max retries" error: keep the one that says why.
    if (lastRedisError && /max retries per request/i.test(e.message)) return;
    lastRedisError = { message: `${e.message} at ${redactUrl(config.redis.url)}`, plainUrl: config.redis.url.startsWith('redis:') && !config.redis.tls.enabled };
  });
  return redis;
}

export function clientFor(config: FerryConfig): FerryClient {
  return new FerryClient(config, redisFor(config));
}

export interface RedisFailure {
  message: string;
  plainUrl: boolean;
}

let lastRedisError: RedisFailure | undefined;

/** The last error a CLI connection reported, for main.ts's message about a failed command. */
export function lastRedisFailure(): RedisFailure | undefined {
  return lastRedisError;
}
