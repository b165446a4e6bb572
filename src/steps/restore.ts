import { CommandError, StepError } from '../errors';
import type { Step } from './context';
import { sha256File } from '../archive/localFiles';
import { withImportableArchive } from '../archive/plain';
import type { CriuStats } from '../podman/parse';
import { removeStorageOnlyCopy } from './storageCopy';
import { VOLUME_MIGRATION_LABEL } from './volumes';
import { lazyOf, restoreNeedsPages, wrappedPodman } from './postCopy';
import { forgetLazyRestore, serveLazyPages } from '../postcopy';
import { addressesToHold, holdAddresses, releaseAddresses } from '../podman/addressHold';
import { ensureSourceNotRunning } from './sourceNotRunning';

/**
 * Destination host: check the archive's hash once more (nothing is restored from a file
 * that is not the one checkpointed), decrypt it if it is encrypted, then restore. A
 * container of ours left half-made by an earlier attempt is removed first; one that
 * already runs means this step is done.
 */
export const restore: Step = async (ctx) => {
  const { rec, local, config } = ctx;
  const archive = rec.archive;
  const sourceId = rec.source?.id;
  if (!archive || !sourceId) throw new StepError(`migration ${rec.id} reached restore without an archive`, { code: 'NO_ARCHIVE', permanent: true });
  // Asked at once, while this host looks at its own side and hashes the archive: the round
  // trip hides behind that work instead of adding to the downtime.
  const sourceAsked = ensureSourceNotRunning(ctx, sourceId);
  sourceAsked.catch(() => undefined);
  // A hold an interrupted attempt left would keep the container's clients out for good.
  const holdOn = addressesToHold(rec, config);
  await releaseAddresses(ctx.localRunner, holdOn);
  const existing = await local.find(rec.container);
  if (existing) {
    if (existing.id !== sourceId) {
      throw new StepError(`host ${rec.to} has another container named "${rec.container}" (id ${existing.id.slice(0, 12)}); not restoring over it`, { code: 'DESTINATION_NAME_TAKEN', permanent: true });
    }
    if (existing.running) return { result: { alreadyDone: true } };
    await ctx.fence();
    await local.remove(rec.container);
  }
  // An earlier attempt's podman killed mid-restore can leave the container running outside
  // podman's sight; it would run beside this restore's copy. This host's lock is ours.
  await ctx.fence();
  await local.reapRuntimeLeftover(sourceId);
  const here = ctx.files.destination;
  const path = here.archive;
  let actual: { sha256: string; bytes: number };
  try {
    actual = await sha256File(path);
  } catch (e: unknown) {
    throw new StepError(`archive ${path} is missing on host ${rec.to}`, { code: 'NO_ARCHIVE', permanent: true, cause: e });
  }
  if (actual.sha256 !== archive.sha256) {
    throw new StepError(`archive ${path} on host ${rec.to} does not match its checksum (expected ${archive.sha256}, found ${actual.sha256}); refusing to restore it`, { code: 'CHECKSUM_MISMATCH', permanent: true });
  }
  if (archive.volumes?.length) {
    // With --ignore-volumes podman makes an empty volume for one that is missing: the
    // service would run on no data. Every volume must be the copy made for this migration.
    const ours = new Set(await local.volumes.labelled(VOLUME_MIGRATION_LABEL, rec.id));
    const missing = archive.volumes.filter((v) => !ours.has(v));
    if (missing.length > 0) {
      throw new StepError(`host ${rec.to} lacks the copy of volume ${missing.join(', ')} made for this migration; not restoring the container without its data`, { code: 'VOLUME_MISSING', permanent: true });
    }
  }
  await sourceAsked;
  // Post-copy: the source serves the pages (a server serves one restore: started again for a retry).
  // A split archive restored without its pages would run on zeros.
  const split = await restoreNeedsPages(ctx);
  const lazy = split ? lazyOf(rec) : null;
  const keepDir = rec.postCopy?.keepDir;
  if (split && (!lazy || !keepDir)) throw new StepError(`migration ${rec.id} is post-copy but its record lost its ports or where the source keeps the pages; not restoring`, { code: 'POSTCOPY_NO_DUMP', permanent: true });
  if (lazy && keepDir) {
    await forgetLazyRestore(ctx.localRunner, lazy);
    await serveLazyPages(ctx.remote(rec.from).runner, lazy, keepDir);
  }
  const podman = lazy ? wrappedPodman(ctx) : local;
  await ctx.mark({ restoreStartedAt: Date.now() });
  await ctx.progress({ percent: 20, message: lazy ? 'restoring; the memory follows' : 'restoring' });
  const restoreOnce = () =>
    withImportableArchive(
      here,
      archive,
      config.archive.keyFile,
      async (importable) => {
        // Once more right before podman: the attempt may have been superseded while it decrypted,
        // or while it waited for the hold on the addresses (the source may be bringing it back).
        await ctx.fence();
        return podman.restoreImport(importable, { ...config.checkpoint, ignoreVolumes: !!archive.volumes?.length, timeoutMs: config.timeouts.step.restore });
      },
      ctx.signal,
    );
  const restoreHere = async (): Promise<CriuStats> => {
    try {
      return await restoreOnce();
    } catch (e: unknown) {
      const stderr = e instanceof CommandError ? e.stderr : '';
      const full = /no space left on device|disk quota exceeded/i.exec(stderr)?.[0];
      if (full) {
        // Retrying cannot free space, and each retry fails worse: podman's cleanup of the
        // half-made copy needs space too (seen: the next attempt found the id "already in
        // use"). Fail for good with the first, true reason; rollback takes the copy away.
        throw new StepError(`podman ran out of space restoring on host ${rec.to} (${full.toLowerCase()}): its container storage is full; free space there and migrate again`, { code: 'DESTINATION_DISK_FULL', permanent: true, cause: e });
      }
      // A copy only podman's storage remembers (inspect above cannot see it) holds the id.
      // Looked for only now: the check costs a podman call inside the downtime.
      if (!stderr.includes('already in use')) throw e;
      await ctx.fence();
      if (!(await removeStorageOnlyCopy(local, rec.container, sourceId, rec.to))) throw e;
      await ctx.mark({ restoreStartedAt: Date.now() });
      return restoreOnce();
    }
  };
  const hold = await holdAddresses(ctx.localRunner, holdOn, config.timeouts.step.restore);
  let stats: CriuStats;
  try {
    stats = await restoreHere();
  } catch (e: unknown) {
    // A release that cannot run (the attempt was stopped) leaves the hold to the next attempt
    // or to rollback, which release first.
    await releaseAddresses(ctx.localRunner, holdOn).catch(() => undefined);
    throw e;
  }
  // The connections are back once podman returns. Released before the container counts as
  // restored: a hold left behind would keep its clients out.
  await releaseAddresses(ctx.localRunner, holdOn);
  return { result: { restoreUs: stats.restoreUs, ...(hold.held.length || hold.unavailable.length ? { addressHold: hold } : {}) }, patch: { restoreStats: stats } };
};
