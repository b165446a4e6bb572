import { StepError } from '../errors';
import { coerceError } from '../errors/coerceError';
import type { Step } from './context';
import { removeFile } from '../archive/localFiles';
import { waitHealthy } from './probes';

/**
 * Destination host: the restored container is the one we checkpointed, it runs, and its
 * health probe passes. Only then is the destination's archive removed: the migration
 * has its new home and the source may be cleaned up.
 */
export const verify: Step = async (ctx) => {
  const { rec, local, config } = ctx;
  const info = await local.inspect(rec.container);
  if (!info || info.id !== rec.source?.id) {
    throw new StepError(`container "${rec.container}" is not on host ${rec.to} after restore`, { code: 'RESTORE_MISSING' });
  }
  if (!info.running) {
    throw new StepError(`container "${rec.container}" on host ${rec.to} is not running after restore (state: ${info.status})`, { code: 'RESTORE_NOT_RUNNING' });
  }
  let health: { ms: number; tries: number };
  try {
    health = await waitHealthy(rec.probe, { address: ctx.self.address, container: rec.container, podman: local, ports: rec.source?.ports ?? [] }, config.verify);
  } catch (e: unknown) {
    throw new StepError(`container "${rec.container}" on host ${rec.to}: ${coerceError(e).message}`, { code: 'HEALTH_PROBE_FAILED', cause: e });
  }
  const answeredAt = Date.now();
  if (rec.archive) {
    // The plain copy too: a restore killed after podman finished never got to remove it.
    for (const f of [ctx.files.destination.archive, ctx.files.destination.plain]) await removeFile(f);
  }
  return {
    result: { probe: rec.probe.kind, probeMs: health.ms, probeTries: health.tries, downtimeMs: rec.frozenAt ? answeredAt - rec.frozenAt : null },
    patch: { answeredAt },
  };
};
