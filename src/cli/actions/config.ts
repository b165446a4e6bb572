import type { Command } from 'commander';
import type { CliContext } from '../context';
import { redactConfig } from '../../config/load';
import { loadArchiveKey } from '../../archive/key';
import { checkRedisSettings } from '../../redis';

export async function checkConfig(ctx: CliContext, opts: { offline?: boolean }, cmd: Command): Promise<void> {
  const conf = ctx.configFrom(cmd);
  ctx.io.out(JSON.stringify(redactConfig(conf), null, 2));
  if (conf.archive.encryption !== 'none') {
    const key = await loadArchiveKey(conf.archive.keyFile);
    ctx.io.err(`archive encryption ${conf.archive.encryption}, key ${key.path} (id ${key.id}); every host needs this same key`);
  }
  if (opts.offline) return;
  const redis = ctx.redisFor(conf, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
    for (const w of await checkRedisSettings(redis, conf)) ctx.io.err(`warning: ${w}`);
    ctx.io.err('config OK; Redis reachable');
  } finally {
    redis.disconnect();
  }
}
