import { readFileSync } from 'node:fs';
import IORedis, { Cluster, RedisOptions } from 'ioredis';
import type { FerryConfig } from './config/load';
import { ConfigError } from './errors';

/** A connection to a single Redis (plain, TLS, Sentinel) or to a Redis Cluster. */
export type RedisConnection = IORedis | Cluster;

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
    // A demoted master keeps taking writes until the sentinels reconfigure it (seconds later),
    // and those writes are then dropped: a record rewound past whole steps. Told of the switch
    // by the sentinels, the connection moves to the new master at once.
    opts.failoverDetector = true;
    if (opts.tls) {
      // With sentinels ioredis ignores `tls`: without these it asks the sentinels and talks
      // to the master they name in clear, password and every record included.
      opts.sentinelTLS = { ...opts.tls };
      opts.enableTLSForSentinelMode = true;
    }
  } else {
    opts.host = url.hostname || '127.0.0.1';
    opts.port = url.port ? Number(url.port) : 6379;
  }
  return opts;
}

export function createRedis(config: FerryConfig, extra: Partial<RedisOptions> = {}): RedisConnection {
  const nodes = config.redis.cluster.nodes;
  if (nodes.length === 0) return new IORedis({ ...redisOptions(config), ...extra });
  // Cluster: the per-node options (auth, TLS, BullMQ's maxRetriesPerRequest) go to each
  // node; reconnecting and lazy start are the cluster's own. Keys all carry the prefix's
  // hash tag (see config/load.ts), so Ferry's multi-key scripts stay on one slot.
  const { host: _h, port: _p, db: _db, sentinels: _s, name: _n, retryStrategy, lazyConnect, ...node } = { ...redisOptions(config), ...extra };
  return new Cluster(
    nodes.map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })),
    {
      redisOptions: node,
      lazyConnect,
      enableReadyCheck: true,
      ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
      // ioredis would resolve node names to addresses first; a TLS certificate names the
      // host, so the name must be what it connects with (ioredis' advice for TLS clusters).
      ...(node.tls ? { dnsLookup: (address: string, done: (err: Error | null, addr: string) => void) => done(null, address) } : {}),
    },
  );
}

/** Whether a Redis error says the password (or the ACL user) was refused. */
export function refusedPassword(e: Error): boolean {
  return /NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(e.message);
}

/**
 * BullMQ loses jobs silently if Redis evicts keys; check the policy before serving. INFO is
 * used rather than CONFIG GET because managed Redis services often forbid CONFIG.
 */
export async function checkRedisSettings(redis: RedisConnection, config: FerryConfig): Promise<string[]> {
  // In a cluster every master holds keys (and could evict them): ask each one.
  // A cluster knows its masters only once connected: an empty list would check nothing.
  if (redis instanceof Cluster) await redis.ping();
  const nodes: IORedis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
  if (nodes.length === 0) throw new ConfigError('the Redis Cluster reports no masters; check redis.cluster.nodes');
  const problems: string[] = [];
  for (const node of nodes) {
    const info = await node.info('memory');
    const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
    const where = nodes.length > 1 ? ` on ${node.options.host ?? '?'}:${node.options.port ?? '?'}` : '';
    if (policy && policy !== 'noeviction') {
      problems.push(`Redis maxmemory-policy is "${policy}"${where}; Ferry (BullMQ) requires "noeviction", or queued steps can be evicted and migrations lost. Set: CONFIG SET maxmemory-policy noeviction`);
    }
  }
  if (problems.length > 0 && config.redis.requireNoEviction) throw new ConfigError(problems.join('; '));
  return problems;
}
