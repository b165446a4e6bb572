import { StepError } from '../errors';
import { inspectFinishingRemoval } from './storageCopy';
import type { Step, StepContext, StepOutcome } from './context';
import type { CommandResult } from '../exec/runner';
import { removeFile } from '../archive/localFiles';
import { archiveCopies } from '../engine/files';
import { removeFrozenMarker } from '../archive/frozenMarker';
import { removeMovedSourceVolumes } from './volumes';
import { ledgerText, READ_LEDGER_REMOVE_FILES, retireSourceFolders } from './copiedMounts';
import { finishLazyCopy, mayUsePostCopy, tearDownPostCopy } from './postCopy';

/**
 * Source host, after the destination was verified: remove the frozen source container
 * and both archives. If the source copy somehow runs, neither copy of the container is
 * removed (the archives still go): two live copies need a person, not a guess.
 */
export const cleanup: Step = async (ctx) => {
  const { rec } = ctx;
  // Whether or not the record still knows of an archive (a Redis crash can rewind it): the
  // paths are derived from the migration id, and removing what is not there costs nothing.
  // verify already removed the destination's; this catches a verify that crashed right after
  // probing. The same remote command reads the ledger of copied folders, and it runs while
  // the source is dealt with: the destination's copy is verified, nothing here needs these.
  const there = ctx.files.destination;
  const argv = ['sh', '-c', READ_LEDGER_REMOVE_FILES, 'sh', there.copiedFolders, there.archive, there.plain];
  await ctx.fence();
  const remoteDone = ctx.remote(rec.to).runner.run(argv);
  // Handled here at once: it may fail while the source is still being dealt with.
  remoteDone.catch(() => undefined);
  try {
    return await cleanUpSource(ctx, remoteDone);
  } finally {
    // Never left running behind a failed attempt, beside the next one.
    await Promise.allSettled([remoteDone]);
  }
};

async function cleanUpSource(ctx: StepContext, remoteDone: Promise<CommandResult>): Promise<StepOutcome> {
  const { rec, local } = ctx;
  const there = ctx.files.destination;
  const warnings: string[] = [];
  // An earlier attempt of this step may have been stopped in the middle of its `podman rm`.
  const { info, finished } = await inspectFinishingRemoval(local, rec.container, rec.source?.id, () => ctx.fence());
  let removedSource = finished;
  if (info && info.id === rec.source?.id) {
    if (info.running) {
      throw new StepError(`container "${rec.container}" runs on BOTH ${rec.from} and ${rec.to}; not removing either. Stop the copy you do not want by hand`, { code: 'DOUBLE_RUN', permanent: true });
    }
    // Post-copy: the kept dump is the last whole copy until the destination says it has every
    // page; finishLazyCopy refuses otherwise. Once the source container is gone, so is the dump.
    // Whether the dump was split is asked of this host's disk too, not of the record alone.
    await finishLazyCopy(ctx);
    await ctx.fence();
    await local.remove(rec.container);
    removedSource = true;
  } else if (info) {
    warnings.push(`host ${rec.from} now has a different container named "${rec.container}"; left it alone`);
  }
  // Nor outside podman's sight (a rollback's in-place restore whose podman died, then a record
  // rewound past it): a running one is a second copy for a person to judge, as above; a
  // stopped or half-made one goes.
  if (rec.source?.id) {
    await ctx.fence();
    await local.reapRuntimeLeftover(rec.source.id, { keepRunning: true });
  }
  // The source copy is gone, and the archive goes before the marker: a rollback that finds no
  // marker (this attempt stopped in between, then a rewound record) must find nothing to import.
  for (const f of archiveCopies(ctx.files.source)) await removeFile(f);
  // Nothing frozen here is waiting to be brought back.
  await removeFrozenMarker(ctx.files.source.dir, rec.id);
  // Volumes the destination holds for this migration: the copy here is stale from now on.
  // Asked there unless the record knows the archive and that it moved none (a record rewound
  // by a Redis crash may not know).
  let removedVolumes: string[] = [];
  if ((!info || removedSource) && (!rec.archive || rec.archive.volumes?.length)) {
    const vols = await removeMovedSourceVolumes(local.volumes, ctx.remote(rec.to).podman.volumes, rec.id);
    removedVolumes = vols.removed;
    for (const k of vols.kept) warnings.push(`host ${rec.from} keeps ${k}: it moved to ${rec.to}, this copy is stale`);
  }
  const remote = await remoteDone;
  if (remote.code !== 0) warnings.push(`could not remove the archive on ${rec.to}: ${remote.stderr.trim()}`);
  let renamedFolders: string[] = [];
  if (!info || removedSource) {
    const folders = await retireSourceFolders(ctx.localRunner, ctx.remote(rec.to).runner, there.copiedFolders, rec.id, ledgerText(remote.stdout));
    renamedFolders = folders.renamed;
    for (const f of folders.renamed) warnings.push(`host ${rec.from} keeps the folder's stale copy as ${f}: remove it once the container on ${rec.to} is checked`);
    for (const k of folders.kept) warnings.push(`host ${rec.from} keeps ${k}: it was copied to ${rec.to}, this copy is stale`);
  }
  if (mayUsePostCopy(rec)) warnings.push(...(await tearDownPostCopy(ctx)));
  return { result: { removedSource, ...(removedVolumes.length ? { removedVolumes } : {}), ...(renamedFolders.length ? { renamedFolders } : {}) }, patch: warnings.length ? { warnings: [...rec.warnings, ...warnings] } : undefined };
}
