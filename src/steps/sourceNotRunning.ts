import { coerceError, StepError } from '../errors';
import { limited } from '../exec/runner';
import { Podman } from '../podman/podman';
import type { StepContext } from './context';

/** Each question to the source: short, and never without an end. */
const ASK_TIMEOUT_MS = 15_000;

/**
 * Restore asks the source, before it marks itself started, whether the source runs the
 * container again (finding 25 in docs/reliability.md). A rollback that ran while this host
 * could not be reached brings the container back there and leaves the archive here; if Redis
 * then loses that rollback (a crash within its last second, a failover), the record is back at
 * restore, and nothing else would stop this host from starting a second copy.
 *
 * Asked of podman and of the runtime there (a podman killed mid-restore can leave a copy only
 * runc knows), never of the frozen marker alone: rollback removes the marker only after the
 * container runs again, and a rollback stopped in between leaves both. A source with no copy,
 * or a stopped one, leaves the archive here as the copy that counts: the restore goes on.
 *
 * A source that cannot be asked is no answer. The restore goes on only if nothing can have
 * lost a rollback since the hand-over: a single Redis (no Sentinel, no Cluster) whose run id
 * and replication id are still those the hand-over was recorded in (`handedOverRunId`), as
 * rollback judges an unreachable destination. Otherwise the attempt fails, to be tried again:
 * restore has not marked itself started, so the rollback that follows its last attempt may
 * still bring the container back on the source.
 */
export async function ensureSourceNotRunning(ctx: StepContext, sourceId: string): Promise<void> {
  const { rec, config } = ctx;
  const source = ctx.remote(rec.from);
  const podman = new Podman(limited(source.runner, ASK_TIMEOUT_MS), source.podman.command);
  let info, runtime;
  try {
    [info, runtime] = await Promise.all([podman.inspect(rec.container), podman.runtimeState(sourceId)]);
  } catch (e: unknown) {
    const failover = config.redis.sentinel.sentinels.length > 0 || config.redis.cluster.nodes.length > 0;
    const now = failover ? null : await ctx.redisRunId();
    if (now && rec.handedOverRunId && now === rec.handedOverRunId) {
      ctx.log.warn({ err: coerceError(e).message }, `host ${rec.from} could not be asked whether it runs the container; Redis has kept every write since the hand-over, so no rollback there was lost: restoring`);
      return;
    }
    throw new StepError(
      `host ${rec.from} could not be asked whether it runs container "${rec.container}" again (${coerceError(e).message}), and ${failover ? 'with Redis Sentinel or Cluster a failover may have lost a rollback there' : 'Redis has restarted or failed over since the archive was handed over, which may have lost a rollback there'}: not restoring it on ${rec.to} this attempt`,
      { code: 'SOURCE_UNKNOWN', cause: e },
    );
  }
  const runsThere = (info?.id === sourceId && info.running) || runtime === 'running' || runtime === 'paused' || runtime === 'restoring';
  if (runsThere) {
    throw new StepError(
      `container "${rec.container}" runs on host ${rec.from} again (${info?.id === sourceId && info.running ? 'podman' : `its runtime: ${runtime ?? ''}`}), which took it back for this migration (a rollback the record lost, in a Redis crash or failover): not restoring a second copy on ${rec.to}`,
      { code: 'SOURCE_RUNS', permanent: true },
    );
  }
}
