import { StepError } from '../errors';
import { withImportableArchive } from '../archive/plain';
import { stopStrayExport } from '../transfer/fifo';
import type { Step } from './context';
import { fileSize, removeFile } from '../archive/localFiles';
import { archiveCopies } from '../engine/files';
import { readFrozenMarker, removeFrozenMarker } from '../archive/frozenMarker';
import { refusedByPodman, restoreFrozen } from './recoverFrozen';
import { frozenByOther, frozenByThisMigration } from './frozenRecovery';
import { clearDestination } from './destinationCopy';
import { coerceError } from '../errors/coerceError';
import { addressesToHold, releaseAddresses } from '../podman/addressHold';
import { SshError } from '../errors';
import { removeCopiedVolumes, volumesMissingOnSource } from './volumes';
import { foldersMissingOnSource, removeCopiedFolders } from './copiedMounts';
import { mayUsePostCopy, stopDestinationLazyCopy, tearDownPostCopy, wasSplitOnSource } from './postCopy';

/** The destination could not be reached at all (as opposed to answering with a failure). */
function isUnreachable(e: unknown): boolean {
  return e instanceof SshError;
}

/**
 * Source host, after a step from checkpoint on failed for good. Order matters: first make
 * sure the destination does not run the container (only a container with the source's id
 * is removed there; one that never ran and cannot be removed stays, with a warning, see
 * destinationCopy.ts), then bring it back on the source: in place if podman still holds
 * its checkpoint, else from the archive. The archive is deleted only once the source runs it.
 */
export const rollback: Step = async (ctx) => {
  const { rec, local, config } = ctx;
  const name = rec.container;
  const sourceId = rec.source?.id;
  const here = ctx.files.source;
  // A post-copy archive holds almost no memory: the source's whole dump, restored in place, is
  // the only way back. Asked of this host's disk, which a rewound record cannot make forget.
  const lazyArchive = await wasSplitOnSource(rec, ctx.localRunner);
  const archivePath = rec.archive && !lazyArchive ? here.archive : undefined;
  let removedFromDestination = false;
  let stuck: string | undefined;
  const warnings: string[] = [];
  // Only what can come back here justifies taking the destination's copy away. A record
  // that lost its progress (a Redis crash after cleanup) can send a migration that in fact
  // ended well into rollback: the source has nothing left, and the copy on the destination
  // is the container. It stays, running, and a person is told.
  // A podman export orphaned by a worker that died during the checkpoint holds the
  // container's lock: nothing below could act on it.
  if (await stopStrayExport(ctx.localRunner, here.fifo)) ctx.log.warn('stopped a checkpoint export left behind by a dead worker');
  const before = await local.inspect(name);
  const marker = await readFrozenMarker(here.dir, rec.id);
  // The destination may hold a copy only if this migration froze the container. That is asked
  // whenever it froze it, not only when the record says restore started: that marker can be
  // lost (a Redis failover, an AOF fsync'd once a second).
  const mayHaveRestored = !!rec.frozenAt || !!marker || !!rec.archive || !!rec.restoreStartedAt;
  // Only the container with the source's id is this migration's. Another by its name (made
  // after a cleanup that a rewound record forgot) is not the container, running or not.
  if (mayHaveRestored && before && sourceId && before.id !== sourceId) {
    throw new StepError(
      `host ${rec.from} has another container named "${name}" (id ${before.id.slice(0, 12)}), not the one this migration moved (id ${sourceId.slice(0, 12)}): nothing here to bring back, so nothing on host ${rec.to} is touched; check where the container runs`,
      { code: 'ROLLBACK_IMPOSSIBLE', permanent: true },
    );
  }
  const frozenByUs = (c: { id: string } | null): boolean => frozenByThisMigration(rec, marker, c?.id);
  const restorable = !!before && (before.running || before.checkpointed || frozenByUs(before));
  if (!restorable && !(archivePath && (await fileSize(archivePath)) !== null)) {
    // Nothing here can bring the container back, so whatever the destination holds may be the
    // only copy: it is never removed. An answer that cannot be had fails the attempt (retried);
    // it is not taken for "nothing there".
    const there = await ctx.remote(rec.to).podman.inspect(name);
    if (there?.running && (!sourceId || there.id === sourceId)) {
      throw new StepError(`container "${name}" is no longer on host ${rec.from} and runs on host ${rec.to}: left there, running; nothing to roll back to`, { code: 'RUNS_ON_DESTINATION', permanent: true });
    }
    const copy = there && (!sourceId || there.id === sourceId) ? `holds a ${there.status} copy (id ${there.id.slice(0, 12)}), left untouched: it may be the only one` : 'holds no copy podman knows of';
    throw new StepError(`container "${name}" is gone from host ${rec.from} (no checkpoint, no archive), so nothing can be rolled back; host ${rec.to} ${copy}`, { code: 'ROLLBACK_IMPOSSIBLE', permanent: true });
  }
  // Data copied there for this migration whose source copy is gone (a cleanup that ran,
  // then a Redis crash rewound the record) is the only copy: nothing there is taken away.
  const onlyThere = await dataOnlyOnDestination(ctx).catch(() => []);
  if (onlyThere.length > 0) {
    throw new StepError(`host ${rec.from} no longer has ${onlyThere.join(', ')}, which host ${rec.to} holds for this migration: that is the only copy, so nothing is rolled back; check the container on ${rec.to}`, {
      code: 'DATA_ONLY_ON_DESTINATION',
      permanent: true,
    });
  }
  // The destination may hold a copy: it must not run before the source runs again.
  // A migration that never froze it (no frozenAt, no marker here, no archive) restored
  // nothing anywhere: a copy on the destination is someone else's (another Ferry
  // installation moving the same container), and removing it could lose the container.
  await ctx.fence();
  if (mayHaveRestored) {
    try {
      // A restore attempt that lost its lease may still act there: wait for it first.
      const destLock = await ctx.lockOn(rec.to);
      try {
        await ctx.fence();
        if (mayUsePostCopy(rec)) await stopDestinationLazyCopy(ctx);
        const cleared = await clearDestination(ctx.remote(rec.to).podman, name, sourceId, rec.to);
        removedFromDestination = cleared.removed;
        stuck = cleared.stuck;
      } finally {
        await destLock.release();
      }
    } catch (e: unknown) {
      // Unreachable, or a copy that runs and will not go. If restore may have started there,
      // bringing the source back could make two: retry, and in the end hand it to a person.
      if (rec.restoreStartedAt || !isUnreachable(e)) throw e;
      // The record says restore never started. Believed only if nothing can have rewound it:
      // the archive was never handed over (the marker on this disk, which goes only after the
      // archive here did), or the one Redis server that holds the record has neither restarted
      // nor been replaced since the hand-over. With Sentinel or a Cluster, a split can leave
      // an old master taking writes while its replica, promoted, took the restore's: there the
      // record is never believed against an unreachable destination.
      if (marker?.handedOverAt !== undefined || (!marker && archivePath && (await fileSize(archivePath)) !== null)) {
        const failover = config.redis.sentinel.sentinels.length > 0 || config.redis.cluster.nodes.length > 0;
        const now = failover ? null : await ctx.redisRunId();
        if (!marker?.handedOverRunId || !now || now !== marker.handedOverRunId) {
          const why = !marker
            ? 'this host keeps the archive but no frozen marker'
            : failover
              ? 'the archive was handed to it, and with Redis Sentinel or Cluster a failover may have lost that restore started there'
              : `the archive was handed to it while Redis has restarted or failed over since (${marker.handedOverRunId?.slice(0, 8) ?? 'unknown'} then, ${now?.slice(0, 8) ?? 'unknown'} now)`;
          throw new StepError(`host ${rec.to} cannot be reached (${coerceError(e).message}), and ${why}: the record may not know that restore started there, so the container is not brought back on ${rec.from} until ${rec.to} answers`, {
            code: 'DESTINATION_UNKNOWN',
            cause: e,
          });
        }
      }
      warnings.push(`host ${rec.to} could not be asked whether it holds a copy (${coerceError(e).message}); its restore never started`);
    }
  }
  // The checkpoint streams to the destination while it runs: a copy may be there even
  // when the record never got its archive (crash or timeout mid-checkpoint).
  try {
    const there = ctx.files.destination;
    await ctx.remote(rec.to).runner.run(['rm', '-f', '--', ...archiveCopies(there)]);
  } catch {
    // An unreachable destination keeps a stray archive, never a running copy
    // (restore had not started, or the branch above would have thrown).
  }
  // A restore interrupted there may have left its hold on the container's addresses, which
  // would silence whatever takes such an address there next.
  const held = addressesToHold(rec, config);
  await releaseAddresses(ctx.remote(rec.to).runner, held).catch((e: unknown) => warnings.push(`host ${rec.to} may still hold back TCP to ${held.join(', ')} (${coerceError(e).message}); \`nft list tables netdev\` there shows it`));
  const importArchive = async (): Promise<void> => {
    const archive = rec.archive as NonNullable<typeof rec.archive>;
    if (rec.source?.id) await local.reapRuntimeLeftover(rec.source.id, { keepRunning: true });
    await withImportableArchive(here, archive, config.archive.keyFile, (p) => local.restoreImport(p, { ...config.checkpoint, ignoreVolumes: !!archive.volumes?.length, timeoutMs: config.timeouts.step.rollback }), ctx.signal);
  };
  const info = await local.inspect(name);
  await ctx.fence();
  let how: string;
  if (info?.running) {
    how = 'already running on the source';
  } else if (info && frozenByUs(info)) {
    try {
      const back = await restoreFrozen(local, ctx.localRunner, info, config, config.timeouts.step.rollback, rec.id);
      how = `restored ${back.how}`;
      if (back.warning) {
        warnings.push(back.warning);
        // Said at once: the step may yet fail, and its next attempt finds the container running.
        await ctx.mark({ warnings: [...rec.warnings, ...warnings] });
      }
    } catch (e: unknown) {
      // A copy runc still runs (RUNS_OUTSIDE_PODMAN) is no refusal: removing podman's record
      // would hide it, and the import would run a second.
      if (!refusedByPodman(e) || !archivePath || (await fileSize(archivePath)) === null) throw e;
      await local.remove(name);
      await importArchive();
      how = 'restored from the archive';
    }
  } else if (info?.checkpointed) {
    throw frozenByOther(name, rec.from);
  } else if (!info && archivePath && (await fileSize(archivePath)) !== null) {
    await importArchive();
    how = 'restored from the archive';
  } else if (!info && lazyArchive) {
    throw new StepError(`container "${name}" is gone from host ${rec.from}, and with it the whole dump of its memory: its post-copy archive cannot bring it back`, { code: 'ROLLBACK_IMPOSSIBLE', permanent: true });
  } else if (info) {
    throw new StepError(`container "${name}" on host ${rec.from} is ${info.status} and holds no checkpoint to restore`, { code: 'ROLLBACK_IMPOSSIBLE', permanent: true });
  } else {
    throw new StepError(`container "${name}" is gone from host ${rec.from} and no archive is left to restore it from`, { code: 'ROLLBACK_IMPOSSIBLE', permanent: true });
  }
  const after = await local.inspect(name);
  if (!after?.running) throw new StepError(`container "${name}" is not running on host ${rec.from} after rollback`, { code: 'ROLLBACK_FAILED' });
  // Only now that the source runs again do the volumes and folders copied there go.
  try {
    for (const left of await removeCopiedVolumes(ctx.remote(rec.to).podman.volumes, rec.id)) warnings.push(`host ${rec.to} keeps ${left}, copied there for this migration; remove it by hand`);
    await removeCopiedFolders(ctx.remote(rec.to).runner, ctx.files.destination.copiedFolders);
  } catch (e: unknown) {
    warnings.push(`host ${rec.to} could not be cleared of the volumes and folders copied there for this migration (${coerceError(e).message}); remove them by hand`);
  }
  if (stuck) {
    // One more try now that the source runs (space may have been freed meanwhile); then say it.
    const again = await clearDestination(ctx.remote(rec.to).podman, name, sourceId, rec.to).catch((e: unknown) => ({ removed: false, stuck: coerceError(e).message }));
    if (again.stuck) warnings.push(`host ${rec.to} keeps ${again.stuck}; it never ran there. Remove it (\`podman rm -f ${name}\`, or \`podman ps -a --external\` to find it) once space is freed`);
    else removedFromDestination = true;
  }
  // Post-copy: the page server, the tunnel and the kept dump, now that the source runs it again.
  if (mayUsePostCopy(rec)) warnings.push(...(await tearDownPostCopy(ctx)));
  // Whatever an interrupted checkpoint left here too: the partial archive and its pipe.
  for (const f of [...archiveCopies(here), here.fifo]) await removeFile(f);
  await removeFrozenMarker(here.dir, rec.id);
  return { result: { how, removedFromDestination }, patch: warnings.length ? { warnings: [...rec.warnings, ...warnings] } : undefined };
};

/** What the destination holds for this migration that the source no longer has. */
async function dataOnlyOnDestination(ctx: Parameters<typeof rollback>[0]): Promise<string[]> {
  const dest = ctx.remote(ctx.rec.to);
  const [volumes, folders] = await Promise.all([volumesMissingOnSource(ctx.local.volumes, dest.podman.volumes, ctx.rec.id), foldersMissingOnSource(ctx.localRunner, dest.runner, ctx.files.destination.copiedFolders)]);
  return [...volumes.map((v) => `volume ${v}`), ...folders];
}
