import { join } from 'node:path';
import { StepError } from '../errors';
import type { Step } from './context';
import { sha256File } from './files';
import { withImportableArchive } from '../archive/plain';

/**
 * Destination host: check the archive's hash once more (nothing is restored from a file
 * that is not the one checkpointed), decrypt it if it is encrypted, then restore. A container of ours left half-made by
 * an earlier attempt is removed first; one that already runs means this step is done.
 */
export const restore: Step = async (ctx) => {
  const { rec, local, config } = ctx;
  const archive = rec.archive;
  const sourceId = rec.source?.id;
  if (!archive || !sourceId) throw new StepError(`migration ${rec.id} reached restore without an archive`, { code: 'NO_ARCHIVE', permanent: true });
  const existing = await local.inspect(rec.container);
  if (existing) {
    if (existing.id !== sourceId) {
      throw new StepError(`host ${rec.to} has another container named "${rec.container}" (id ${existing.id.slice(0, 12)}); not restoring over it`, { code: 'DESTINATION_NAME_TAKEN', permanent: true });
    }
    if (existing.running) return { result: { alreadyDone: true } };
    await local.remove(rec.container);
  }
  const path = join(ctx.self.workDir, archive.file);
  let actual: { sha256: string; bytes: number };
  try {
    actual = await sha256File(path);
  } catch (e: unknown) {
    throw new StepError(`archive ${path} is missing on host ${rec.to}`, { code: 'NO_ARCHIVE', permanent: true, cause: e });
  }
  if (actual.sha256 !== archive.sha256) {
    throw new StepError(`archive ${path} on host ${rec.to} does not match its checksum (expected ${archive.sha256}, found ${actual.sha256}); refusing to restore it`, { code: 'CHECKSUM_MISMATCH', permanent: true });
  }
  await ctx.mark({ restoreStartedAt: Date.now() });
  await ctx.progress({ percent: 20, message: 'restoring' });
  const stats = await withImportableArchive(path, archive, config, (importable) => local.restoreImport(importable, { ...config.checkpoint, timeoutMs: config.timeouts.step.restore }));
  return { result: { restoreUs: stats.restoreUs }, patch: { restoreStats: stats } };
};
