import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError } from '../errors';
import { checkCriu } from './criu';
import { readFrozenMarker } from '../archive/frozenMarker';
import { recoverFrozenInStep } from './frozenRecovery';
import type { Step } from './context';
import { copyImage } from './imageCopy';
import { checkVolumes } from './volumes';
import { checkCopiedMounts } from './copiedMounts';
import type { FerryConfig } from '../config/load';
import type { CommandRunner } from '../exec/runner';
import { loadArchiveKey } from '../archive/key';
import { checkRemoteArchiveKey } from '../archive/remoteKey';
import type { MountInfo } from '../podman/parse';
import { choosePostCopy } from './postCopy';
import { describeNetworks, keepAddressError, portsTakenError, surveyDestination } from './destinationSurvey';
import { hostNetworkListeners } from './hostListeners';
import { declaredSharedMounts, LABEL_SHARED_MOUNTS, movabilityProblems, WHAT_MOVES_DOC } from './movable';

async function checkArchiveKeys(config: FerryConfig, destRunner: CommandRunner, dest: string): Promise<void> {
  if (config.archive.encryption === 'none') return;
  await checkRemoteArchiveKey(destRunner, dest, await loadArchiveKey(config.archive.keyFile));
}

// A marker's name: hidden, and unmistakably Ferry's, in a folder that holds the user's data.
const MARKER_PREFIX = '.ferry-shared-check-';
// Shared file systems may show a new file on another host a moment late (NFS attribute cache).
const MARKER_READS = 3;
const MARKER_READ_PAUSE_MS = 500;

/**
 * A bind mount declared shared storage must be the same folder on the destination, or the
 * container would carry on there with other data: a marker with a random token is written
 * into its folder here and must be read back, unchanged, on the destination. Removed after.
 */
async function checkSharedMount(local: CommandRunner, dest: CommandRunner, m: MountInfo, from: string, to: string): Promise<void> {
  const token = randomBytes(16).toString('hex');
  const name = `${MARKER_PREFIX}${token}`;
  // A bind-mounted file is checked through the folder that holds it.
  const write = await local.run(['sh', '-c', 'd=$1; [ -d "$d" ] || d=$(dirname -- "$d"); printf %s "$2" > "$d/$3" && printf %s "$d"', 'sh', m.source, token, name]);
  if (write.code !== 0) {
    throw new StepError(`bind mount ${m.source} is declared shared, but Ferry cannot write a marker into it on host ${from} to check that host ${to} sees the same folder: ${write.stderr.trim()}`, {
      code: 'SHARED_MOUNT_UNCHECKED',
      permanent: true,
    });
  }
  const marker = `${write.stdout.replace(/\/$/, '')}/${name}`;
  try {
    for (let i = 1; ; i++) {
      const read = await dest.run(['cat', '--', marker], { timeoutMs: 10_000 });
      if (read.code === 0 && read.stdout === token) return;
      if (i >= MARKER_READS) break;
      await sleep(MARKER_READ_PAUSE_MS);
    }
    throw new StepError(
      `bind mount ${m.source} is declared shared but host ${to} does not see the same directory (a marker written into it on host ${from} is not there); mount the same storage at ${m.source} on ${to}, or drop the declaration (label ${LABEL_SHARED_MOUNTS}, checkpoint.sharedMounts) if it is not shared`,
      { code: 'SHARED_MOUNT_DIVERGES', permanent: true },
    );
  } finally {
    await local.run(['rm', '-f', '--', marker]).catch(() => undefined);
  }
}

/**
 * Source host, before anything changes: the container exists and runs, the destination
 * answers over SSH, has no container of that name and nothing on its published ports, can
 * run CRIU, has the image, and holds the same archive key when archives are encrypted.
 * Only the image copy writes anything, and it is idempotent.
 */
export const preflight: Step = async (ctx) => {
  const { rec, local } = ctx;
  // This host froze the container for this very migration, but the record was rewound to
  // preflight (a Redis crash lost its last writes): bring it back first, if it is not
  // already running on the destination.
  const marker = await readFrozenMarker(ctx.files.source.dir, rec.id);
  if (marker) {
    const verdict = await recoverFrozenInStep(ctx, marker);
    if (verdict.kind === 'restored') ctx.log.warn({ how: verdict.how }, 'brought back a container this migration had frozen before its record lost track');
  }
  const info = await local.inspect(rec.container);
  if (!info) {
    throw new StepError(`container "${rec.container}" does not exist on host ${rec.from}`, { code: 'CONTAINER_NOT_FOUND', permanent: true });
  }
  if (!info.running) {
    throw new StepError(`container "${rec.container}" on host ${rec.from} is not running (state: ${info.status}); only a running container can be live-migrated`, { code: 'CONTAINER_NOT_RUNNING', permanent: true });
  }
  // Refused here, not found after the freeze: what a restore elsewhere would split, lose or fail on.
  const problems = movabilityProblems(info, ctx.config);
  if (problems.length > 0) {
    throw new StepError(`container "${rec.container}" on host ${rec.from} cannot be moved, nothing was changed: ${problems.map((p) => p.message).join('; ')} (see ${WHAT_MOVES_DOC})`, { code: problems[0].code, permanent: true });
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
  const shared = declaredSharedMounts(info, ctx.config);
  // With keepAddress the container keeps its address: only on the same network (see keepAddressError).
  const keptNetworks = ctx.config.checkpoint.keepAddress ? info.networks : [];
  // On the host's network the ports it holds are its own listeners, not published ones: read first.
  const hostNet = info.networkMode === 'host' ? await hostNetworkListeners(ctx.localRunner, local, name) : null;
  const ports = hostNet ? [...info.ports, ...hostNet.listeners] : info.ports;
  const [survey, sourceNetworks, criuSource, criuDest, volumes, copiedMounts, memoryCopy] = await Promise.all([
    surveyDestination(dest.runner, dest.podman, name, info.imageId, ports, keptNetworks),
    describeNetworks(ctx.localRunner, local, keptNetworks),
    checkCriu(ctx.localRunner),
    checkCriu(dest.runner),
    checkVolumes(ctx, info),
    checkCopiedMounts(ctx, info),
    choosePostCopy(ctx, info),
    checkArchiveKeys(ctx.config, dest.runner, rec.to),
    ...shared.map((m) => checkSharedMount(ctx.localRunner, dest.runner, m, rec.from, rec.to)),
  ]);
  const { clash, hasImage } = survey;
  if (clash) {
    throw new StepError(`host ${rec.to} already has a container named "${name}" (state: ${clash.status}); remove or rename it before migrating`, { code: 'DESTINATION_NAME_TAKEN', permanent: true });
  }
  const refusal = portsTakenError(survey, name, rec.to, hostNet !== null) ?? keepAddressError(survey, sourceNetworks, name, rec.from, rec.to);
  if (refusal) throw refusal;
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
    result: {
      containerId: info.id,
      image: info.image,
      criuSource,
      criuDest,
      imageCopiedBytes,
      ...(shared.length > 0 ? { sharedMounts: shared.map((m) => m.source) } : {}),
      ...(survey.portsUnchecked || hostNet?.unchecked ? { portsUnchecked: survey.portsUnchecked ?? hostNet?.unchecked } : {}),
      ...(volumes.length > 0 ? { volumes } : {}),
      ...(copiedMounts.length > 0 ? { copiedMounts } : {}),
      ...(name !== rec.container ? { resolvedFrom: rec.container } : {}),
      memoryCopy: memoryCopy.postCopy ? 'post-copy' : 'plain',
      ...(memoryCopy.memoryCopyReason ? { memoryCopyReason: memoryCopy.memoryCopyReason } : {}),
    },
    patch: {
      ...memoryCopy,
      container: name,
      source: {
        id: info.id,
        image: info.image,
        imageId: info.imageId,
        ports: info.ports.map((p) => ({ hostPort: p.hostPort, protocol: p.protocol })),
        addresses: info.addresses,
      },
    },
  };
};
