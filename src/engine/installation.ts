import { createHash } from 'node:crypto';
import type { FerryConfig } from '../config/load';

/**
 * Which Ferry installation a worker belongs to: the Redis it keeps its records in, as its
 * configuration names it, and the key prefix. Written into every frozen marker, so that a
 * worker acts only on containers its own installation froze (engine/repair.ts, finding 12).
 *
 * Derived from the configuration, not kept in Redis: a Redis that is replaced or wiped must
 * not make a host's own markers look like another installation's (its frozen containers
 * would then never be brought back). Only what names the data counts: the Sentinel group,
 * not the sentinels' addresses; the prefix alone for a Cluster, whose seed nodes change.
 * Markers are written and judged by the workers of one host, which share its configuration.
 */
export function installationIdOf(config: FerryConfig): string {
  const r = config.redis;
  let where: string;
  if (r.cluster.nodes.length > 0) where = 'cluster';
  else if (r.sentinel.name) where = `sentinel:${r.sentinel.name}`;
  else {
    const u = new URL(r.url);
    where = `${u.hostname}:${u.port || '6379'}${u.pathname && u.pathname !== '/' ? u.pathname : '/0'}`;
  }
  return `i-${createHash('sha256').update(`${where}\n${r.prefix}`).digest('hex').slice(0, 16)}`;
}
