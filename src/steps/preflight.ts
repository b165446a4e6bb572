import { StepError } from '../errors';
import { checkCriu } from './criu';
import type { Step } from './context';
import { copyImage } from './imageCopy';
import type { FerryConfig } from '../config/load';
import type { CommandRunner } from '../exec/runner';
import { loadArchiveKey } from '../archive/key';
import { checkRemoteArchiveKey } from '../archive/remoteKey';

async function checkArchiveKeys(config: FerryConfig, destRunner: CommandRunner, dest: string): Promise<void> {
  if (config.archive.encryption === 'none') return;
  await checkRemoteArchiveKey(destRunner, dest, await loadArchiveKey(config.archive.keyFile));
}

/**
 * Source host, before anything changes: the container exists and runs, the destination
 * answers over SSH, has no container of that name, can run CRIU, has the image, and
 * holds the same archive key when archives are encrypted.
 * Only the image copy writes anything, and it is idempotent.
 */
export const preflight: Step = async (ctx) => {
  const { rec, local } = ctx;
  const info = await local.inspect(rec.container);
  if (!info) {
    throw new StepError(`container "${rec.container}" does not exist on host ${rec.from}`, { code: 'CONTAINER_NOT_FOUND', permanent: true });
  }
  if (!info.running) {
    throw new StepError(`container "${rec.container}" on host ${rec.from} is not running (state: ${info.status}); only a running container can be live-migrated`, { code: 'CONTAINER_NOT_RUNNING', permanent: true });
  }
  // podman also accepts an ID or a unique ID prefix: what was typed is not the container's
  // identity. Lock what it resolves to (its full ID, and its name on both hosts), so that the
  // same container asked for under two references cannot be migrated twice at once.
  const name = info.name.replace(/^\//, '');
  await ctx.claim([
    { host: rec.from, container: `id:${info.id}` },
    { host: rec.from, container: name },
    { host: rec.to, container: name },
  ]);
  const dest = ctx.remote(rec.to);
  // Independent checks at once: each is a command (most over SSH), and they add up.
  const [clash, criuSource, criuDest, hasImage] = await Promise.all([dest.podman.find(name), checkCriu(ctx.localRunner), checkCriu(dest.runner), dest.podman.imageExists(info.imageId), checkArchiveKeys(ctx.config, dest.runner, rec.to)]);
  if (clash) {
    throw new StepError(`host ${rec.to} already has a container named "${name}" (state: ${clash.status}); remove or rename it before migrating`, { code: 'DESTINATION_NAME_TAKEN', permanent: true });
  }
  await ctx.progress({ percent: 50, message: 'checked container, destination and CRIU' });
  let imageCopiedBytes = 0;
  if (!hasImage) {
    await ctx.progress({ percent: 60, message: `copying image ${info.image} to ${rec.to}` });
    imageCopiedBytes = await copyImage(local, dest.podman, info.image || info.imageId);
    if (!(await dest.podman.imageExists(info.imageId))) {
      throw new StepError(`image ${info.image} (${info.imageId.slice(0, 12)}) is still missing on host ${rec.to} after copying it`, { code: 'IMAGE_COPY_FAILED' });
    }
  }
  return {
    result: { containerId: info.id, image: info.image, criuSource, criuDest, imageCopiedBytes, ...(name !== rec.container ? { resolvedFrom: rec.container } : {}) },
    patch: {
      container: name,
      source: {
        id: info.id,
        image: info.image,
        imageId: info.imageId,
        ports: info.ports.map((p) => ({ hostPort: p.hostPort, protocol: p.protocol })),
      },
    },
  };
};
