import { StepError } from '../errors';
import { coerceError } from '../errors/coerceError';
import type { Step, StepContext } from './context';
import { removeFile } from '../archive/localFiles';
import { waitHealthy } from './probes';
import { deadlineOf, restoredLazily } from './postCopy';
import { copyFailure, pageServerFailure, PostCopyError, readLazyCopy, waitAllPagesCopied } from '../postcopy';

/** The destination's supervisor ends the copy at the deadline; its verdict may take a moment to be written. */
const PAGES_GRACE_MS = 10_000;

/** The other half of a failed page copy: what the source's page server said, when it failed too. */
async function sourceSide(ctx: StepContext): Promise<string> {
  const why = await pageServerFailure(ctx.remote(ctx.rec.from).runner, { migrationId: ctx.rec.id });
  return why ? `; the page server on ${ctx.rec.from} ${why}` : '';
}

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
  // Asked of this host too: a record rewound by a Redis crash may have lost that the restore was lazy.
  const lazy = (await restoredLazily(ctx)) ? { migrationId: rec.id } : null;
  if (!info.running && lazy) {
    // A copy that stopped waiting for its pages was killed by this host's supervisor: say so, for good.
    const copy = await readLazyCopy(ctx.localRunner, lazy);
    if (copy.state === 'failed') {
      throw new StepError(`container "${rec.container}" on host ${rec.to}: ${copyFailure(copy)} and ${rec.to} killed its copy${await sourceSide(ctx)}`, {
        code: 'POSTCOPY_COPY_FAILED',
        permanent: true,
      });
    }
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
  // Post-copy: the source's copy may go only once this host holds every page.
  let allPagesAt: number | undefined;
  if (lazy) {
    await ctx.progress({ percent: 50, message: 'answering; waiting for the last pages' });
    try {
      allPagesAt = await waitAllPagesCopied(ctx.localRunner, lazy, { timeoutMs: deadlineOf(ctx) * 1000 + PAGES_GRACE_MS, signal: ctx.signal });
    } catch (e: unknown) {
      // The destination killed its copy (or never had one): no retry can bring the pages back.
      const failed = e instanceof PostCopyError && (e.code === 'POSTCOPY_COPY_FAILED' || e.code === 'POSTCOPY_NOT_STARTED');
      const why = failed ? await sourceSide(ctx) : '';
      throw new StepError(`container "${rec.container}" on host ${rec.to}: ${coerceError(e).message}${why}`, { code: failed ? 'POSTCOPY_COPY_FAILED' : 'POSTCOPY_WAIT', permanent: failed, cause: e });
    }
  }
  if (rec.archive) {
    // The plain copy too: a restore killed after podman finished never got to remove it.
    for (const f of [ctx.files.destination.archive, ctx.files.destination.plain]) await removeFile(f);
  }
  return {
    result: {
      probe: rec.probe.kind,
      probeMs: health.ms,
      probeTries: health.tries,
      downtimeMs: rec.frozenAt ? answeredAt - rec.frozenAt : null,
      ...(allPagesAt && rec.frozenAt ? { allPagesMs: allPagesAt - rec.frozenAt } : {}),
    },
    patch: { answeredAt, ...(allPagesAt && rec.postCopy ? { postCopy: { ...rec.postCopy, allPagesAt } } : {}) },
  };
};
