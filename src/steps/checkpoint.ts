import { chmod, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { StepError } from '../errors';
import { archiveFileName } from '../engine/plan';
import type { Step } from './context';
import { ensurePrivateDir, fileSize, removeFile, sha256File } from './files';

/**
 * Source host: freeze the container and export its checkpoint archive. The archive is
 * written under a temporary name and renamed once complete and hashed, so an archive
 * with its final name is always whole. The source container is kept (exited), which is
 * what makes rollback possible without the archive.
 */
export const checkpoint: Step = async (ctx) => {
  const { rec, local, config } = ctx;
  const file = archiveFileName(rec.id, config.checkpoint.compression);
  const path = join(ctx.self.workDir, file);
  if (rec.archive && (await fileSize(path)) === rec.archive.bytes) {
    return { result: { alreadyDone: true } };
  }
  const info = await local.inspect(rec.container);
  if (!info) {
    throw new StepError(`container "${rec.container}" disappeared from host ${rec.from} before it was checkpointed`, { code: 'CONTAINER_GONE', permanent: true });
  }
  if (rec.source && info.id !== rec.source.id) {
    throw new StepError(`container "${rec.container}" on host ${rec.from} was replaced by another one (id ${info.id.slice(0, 12)}) since preflight`, { code: 'CONTAINER_REPLACED', permanent: true });
  }
  let reRestored = false;
  if (!info.running) {
    if (!info.checkpointed) {
      throw new StepError(`container "${rec.container}" on host ${rec.from} stopped on its own (state: ${info.status}) before the checkpoint`, { code: 'CONTAINER_NOT_RUNNING', permanent: true });
    }
    // An earlier attempt froze it but its archive was not completed. It never ran anywhere
    // else (restore comes after this step), so bring it back here and checkpoint again.
    await local.restoreInPlace(rec.container, { ...config.checkpoint, timeoutMs: config.timeouts.step.checkpoint });
    reRestored = true;
  }
  await ensurePrivateDir(ctx.self.workDir);
  const part = `${path}.part`;
  await removeFile(part);
  const frozenAt = Date.now();
  await ctx.mark({ frozenAt });
  await ctx.progress({ percent: 10, message: 'checkpointing' });
  const stats = await local.checkpoint(rec.container, part, { ...config.checkpoint, timeoutMs: config.timeouts.step.checkpoint });
  await chmod(part, 0o600);
  const { sha256, bytes } = await sha256File(part);
  await rename(part, path);
  return {
    result: { bytes, sha256, compression: config.checkpoint.compression, frozenUs: stats.frozenUs, reRestored },
    patch: { archive: { file, sha256, bytes }, checkpointStats: stats, frozenAt },
  };
};
