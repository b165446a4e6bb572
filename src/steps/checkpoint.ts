import { chmod, rename } from 'node:fs/promises';
import { AlreadyMovedError, StepError } from '../errors';
import { ARCHIVE_CIPHER } from '../archive/cipher';
import { loadArchiveKey } from '../archive/key';
import type { Step, StepContext } from './context';
import { frozenByOther, frozenByThisMigration, recoverFrozenInStep } from './frozenRecovery';
import { coerceError } from '../errors/coerceError';
import { checkpointStreaming, StreamTarget } from '../transfer/streamCheckpoint';
import { stopStrayExport } from '../transfer/fifo';
import { ensurePrivateDir, fileSize, removeFile } from '../archive/localFiles';
import { readFrozenMarker, writeFrozenMarker } from '../archive/frozenMarker';
import { mountedVolumes, syncVolumes, VolumeSync } from './volumes';
import { declaredCopiedMounts } from './movable';
import { FolderSync, syncCopiedMounts } from './copiedMounts';
import { forgetEarlierLazyDump, setUpPostCopy, wrappedPodman } from './postCopy';
import { completeLazyCheckpoint, serveLazyPages } from '../postcopy';

const PROGRESS_EVERY_MS = 250;

/**
 * Source host: freeze the container and export its checkpoint archive, streaming it to
 * the destination while it is written (see transfer/streamCheckpoint.ts). The archive is
 * written under a temporary name and renamed once complete and hashed, so an archive
 * with its final name is always whole, here and on the destination. The source container is kept (exited), which is
 * what makes rollback possible without the archive.
 */
export const checkpoint: Step = async (ctx) => {
  const { rec, local, config } = ctx;
  const encrypted = config.archive.encryption !== 'none';
  const { source: here, destination: there, name: file } = ctx.files;
  const recordedBytes = rec.archive?.bytes;
  if (recordedBytes !== undefined && (await fileSize(here.archive)) === recordedBytes) {
    return { result: { alreadyDone: true } };
  }
  // A podman export orphaned by a worker that died here would hold the container's lock.
  if (await stopStrayExport(ctx.localRunner, here.fifo)) ctx.log.warn('stopped a checkpoint export left behind by an earlier attempt');
  const info = await local.inspect(rec.container);
  if (!info) {
    await goneBecauseMoved(ctx);
    throw new StepError(`container "${rec.container}" disappeared from host ${rec.from} before it was checkpointed`, { code: 'CONTAINER_GONE', permanent: true });
  }
  if (rec.source && info.id !== rec.source.id) {
    throw new StepError(`container "${rec.container}" on host ${rec.from} was replaced by another one (id ${info.id.slice(0, 12)}) since preflight`, { code: 'CONTAINER_REPLACED', permanent: true });
  }
  let reRestored = false;
  if (!info.running) {
    // The marker matters where an attempt was stopped mid-dump and a crash rewound the record:
    // CRIU had stopped the processes, podman never marked the container checkpointed.
    if (!frozenByThisMigration(rec, await readFrozenMarker(here.dir, rec.id), info.id)) {
      // Another installation sharing this host, or a person, may have frozen it and be
      // restoring it elsewhere; bringing it back here would make two.
      if (info.checkpointed) throw frozenByOther(rec.container, rec.from);
      throw new StepError(`container "${rec.container}" on host ${rec.from} stopped on its own (state: ${info.status}) before the checkpoint`, { code: 'CONTAINER_NOT_RUNNING', permanent: true });
    }
    // An earlier attempt froze it but its archive was not completed: bring it back here and
    // checkpoint again. Restore comes after this step, so it should not run anywhere else,
    // but a record rewound by a Redis crash may not know a restore that happened: the
    // destination is asked first.
    await ctx.fence();
    await recoverFrozenInStep(ctx, { migrationId: rec.id, container: rec.container, containerId: info.id, from: rec.from, to: rec.to, at: Date.now() });
    reRestored = true;
  }
  // Before the freeze: a missing or unsafe key must not cost the container a restart.
  const key = encrypted ? await loadArchiveKey(config.archive.keyFile) : undefined;
  // Post-copy's wrapper, pipe and tunnel, all before the freeze (steps/postCopy.ts).
  const lazy = rec.postCopy ? await setUpPostCopy(ctx) : null;
  if (!lazy) await forgetEarlierLazyDump(ctx);
  // Volumes: the bulk is copied now, while the container runs; only what changes from here
  // to the freeze is copied again inside it (steps/volumes.ts).
  const volumes = mountedVolumes(info);
  const folders = declaredCopiedMounts(info, config).map((m) => m.source);
  let presync: VolumeSync[] = [];
  let presyncFolders: FolderSync[] = [];
  if (volumes.length + folders.length > 0) {
    await ctx.progress({ percent: 5, message: `copying ${[...volumes.map((v) => `volume ${v}`), ...folders].join(', ')} to ${rec.to} while the container runs` });
    presync = await syncVolumes(ctx, volumes);
    presyncFolders = await syncCopiedMounts(ctx, folders);
  }
  await ensurePrivateDir(here.dir);
  const part = here.part;
  await removeFile(part);
  // Persisted before the freeze (a crash right after must not let a cancel forget a
  // frozen container); the exact moment is patched in below, once podman starts.
  await ctx.mark({ frozenAt: Date.now() });
  // The same fact on this host's own disk: Redis may lose its last second in a crash.
  await writeFrozenMarker(here.dir, { migrationId: rec.id, container: rec.container, containerId: info.id, from: rec.from, to: rec.to, at: Date.now(), installation: ctx.installation });
  let target: StreamTarget | undefined;
  try {
    target = { runner: ctx.remote(rec.to).runner, dir: there.dir, partPath: there.part, finalPath: there.archive };
  } catch (e: unknown) {
    ctx.log.warn({ err: coerceError(e).message }, 'not streaming the archive; the transfer step will send it');
  }
  const frozenAt = Date.now();
  // Not awaited: a progress event must not add a Redis round trip to the downtime.
  const started = ctx.progress({ percent: 10, message: target ? `checkpointing, streaming to ${rec.to}` : 'checkpointing' }).catch(() => undefined);
  let lastReport = 0;
  const onBytes = (bytes: number): void => {
    const now = Date.now();
    if (now - lastReport < PROGRESS_EVERY_MS) return;
    lastReport = now;
    void ctx.progress({ percent: 50, bytes, message: 'checkpointing' }).catch(() => undefined);
  };
  const opts = { ...config.checkpoint, ignoreVolumes: volumes.length > 0, timeoutMs: config.timeouts.step.checkpoint };
  const out = await checkpointStreaming(lazy ? wrappedPodman(ctx) : local, ctx.localRunner, rec.container, { part, fifo: here.fifo }, opts, target, { onBytes, encryptWith: key });
  // At once: podman's folder whole again (any restore in place needs it), the pages served.
  const ck = lazy ? await completeLazyCheckpoint(ctx.localRunner, lazy, '') : null;
  if (lazy && ck?.mode === 'lazy' && ck.keepDir) await serveLazyPages(ctx.localRunner, lazy, ck.keepDir);
  await started;
  // The container's processes are gone now: its volumes and folders no longer change.
  const delta = volumes.length > 0 ? await syncVolumes(ctx, volumes) : [];
  const deltaFolders = folders.length > 0 ? await syncCopiedMounts(ctx, folders) : [];
  if (out.streamError) ctx.log.warn({ err: out.streamError }, 'streaming the archive to the destination failed; the transfer step will send it');
  try {
    await chmod(part, 0o600);
    await rename(part, here.archive);
  } catch (e: unknown) {
    // The record will not know this archive: do not leave its streamed copy behind.
    if (out.streamed && target) await target.runner.run(['rm', '-f', '--', target.finalPath]).catch(() => undefined);
    throw e;
  }
  const { sha256, bytes, stats } = out;
  return {
    result: {
      bytes,
      sha256,
      compression: config.checkpoint.compression,
      encryption: config.archive.encryption,
      frozenUs: stats.frozenUs,
      ...(ck ? { memoryCopy: ck.mode === 'lazy' ? 'post-copy' : 'plain (split failed)', lazyPages: ck.split?.lazyPages } : {}),
      reRestored,
      streamed: out.streamed,
      streamError: out.streamError,
      ms: Date.now() - frozenAt,
      ...(volumes.length > 0 ? { volumes: presync.map((p, i) => ({ name: p.name, presyncBytes: p.sentBytes, presyncMs: p.ms, frozenBytes: delta[i]?.sentBytes, frozenMs: delta[i]?.ms })) } : {}),
      ...(folders.length > 0 ? { copiedMounts: presyncFolders.map((p, i) => ({ folder: p.folder, presyncBytes: p.sentBytes, presyncMs: p.ms, frozenBytes: deltaFolders[i]?.sentBytes, frozenMs: deltaFolders[i]?.ms })) } : {}),
    },
    patch: {
      archive: {
        file,
        sha256,
        bytes,
        compression: config.checkpoint.compression,
        streamed: out.streamed,
        ...(key ? { encryption: { cipher: ARCHIVE_CIPHER, keyId: key.id } } : {}),
        ...(volumes.length > 0 ? { volumes } : {}),
      },
      checkpointStats: stats,
      frozenAt,
      ...(lazy && ck
        ? {
            postCopy: { deadlineSeconds: lazy.deadlineSeconds, serverPort: lazy.serverPort, lazyPort: lazy.lazyPort, mode: ck.mode, imagesDir: ck.imagesDir, keepDir: ck.keepDir, lazyPages: ck.split?.lazyPages },
            ...(ck.mode === 'whole' ? { memoryCopyReason: 'the dump could not be split (see split.err in the post-copy folder on the source): memory moved in the archive' } : {}),
          }
        : {}),
      ...(out.streamed ? { bytesTransferred: bytes } : {}),
    },
  };
};

/**
 * The container is gone from the source while the record says it was never frozen. Besides a
 * person removing it, that is what a record rewound past a whole migration looks like: a
 * Sentinel failover drops the writes the demoted master took, a Redis crash its last second,
 * and cleanup may already have removed the source's copy, marker and archive. If the
 * destination runs a container with the ID preflight recorded (restore keeps it), this
 * migration moved it: it goes on from verify there (AlreadyMovedError). Without an answer,
 * the step fails to be tried again: calling it lost would end in a rollback with nothing to
 * roll back to.
 */
async function goneBecauseMoved(ctx: StepContext): Promise<void> {
  const { rec } = ctx;
  const id = rec.source?.id;
  if (!id) return;
  let there;
  try {
    there = await ctx.remote(rec.to).podman.inspect(rec.container);
  } catch (e: unknown) {
    throw new StepError(`container "${rec.container}" is gone from host ${rec.from}; host ${rec.to} must be asked whether this migration already moved it there: ${coerceError(e).message}`, { code: 'CONTAINER_GONE_UNKNOWN', cause: e });
  }
  if (there?.id === id && there.running) {
    throw new AlreadyMovedError(
      `container "${rec.container}" is gone from host ${rec.from} and runs on host ${rec.to} with the same ID, though this migration's record lost that progress (a Redis failover or crash); going on from verify there`,
      id,
      rec.frozenAt,
    );
  }
}
