import { readFileSync } from 'node:fs';
import IORedis, { RedisOptions } from 'ioredis';
import type { FerryConfig } from './config/load';
import { ConfigError } from './errors';

/**
 * ioredis options from config: plain URL, password/ACL user, TLS, or Sentinel. BullMQ
 * needs `maxRetriesPerRequest: null` on connections that block (workers, event readers).
 */
export function redisOptions(config: FerryConfig): RedisOptions {
  const r = config.redis;
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    throw new ConfigError(`redis.url: "${r.url}" is not a URL`);
  }
  const opts: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    password: r.password || decodeURIComponent(url.password) || undefined,
    username: r.username || decodeURIComponent(url.username) || undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
  };
  if (r.tls.enabled || url.protocol === 'rediss:') {
    const read = (f: string) => (f ? readFileSync(f) : undefined);
    opts.tls = { ca: read(r.tls.ca), cert: read(r.tls.cert), key: read(r.tls.key), rejectUnauthorized: r.tls.rejectUnauthorized };
  }
  if (r.sentinel.name) {
    opts.sentinels = r.sentinel.sentinels.map((s) => {
      const i = s.lastIndexOf(':');
      return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
    });
    opts.name = r.sentinel.name;
    opts.sentinelPassword = r.sentinel.password || undefined;
  } else {
    opts.host = url.hostname || '127.0.0.1';
    opts.port = url.port ? Number(url.port) : 6379;
  }
  return opts;
}

export function createRedis(config: FerryConfig, extra: Partial<RedisOptions> = {}): IORedis {
  return new IORedis({ ...redisOptions(config), ...extra });
}

/**
 * BullMQ loses jobs silently if Redis evicts keys; check the policy before serving. INFO is
 * used rather than CONFIG GET because managed Redis services often forbid CONFIG.
 */
export async function checkRedisSettings(redis: IORedis, config: FerryConfig): Promise<string[]> {
  const info = await redis.info('memory');
  const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  const problems: string[] = [];
  if (policy && policy !== 'noeviction') {
    problems.push(`Redis maxmemory-policy is "${policy}"; Ferry (BullMQ) requires "noeviction", or queued steps can be evicted and migrations lost. Set: CONFIG SET maxmemory-policy noeviction`);
  }
  if (problems.length > 0 && config.redis.requireNoEviction) throw new ConfigError(problems.join('; '));
  return problems;
}
