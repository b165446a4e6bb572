import { CommandError, coerceError, StepError, ValidationError } from '../errors';
import type { ContainerInfo } from '../podman/parse';
import type { PodmanVolumes } from '../podman/volumes';
import { RsyncResult, rsyncTo } from '../transfer/rsync';
import type { StepContext } from './context';
import { WHAT_MOVES_DOC } from './movable';

/**
 * Named (and anonymous) volumes move beside the checkpoint, not in it: podman's archive would
 * carry the whole volume through the freeze, copy it one way and leave a stale copy behind.
 * Ferry copies each volume with rsync over SSH while the container runs, then once more,
 * only the difference, after the freeze; podman is told to leave volumes out of the archive
 * and, on the destination, uses the volume that is already there.
 *
 * A volume Ferry creates on the destination carries this label with the migration's id: it
 * is how rollback finds what to take away and cleanup knows the source's copy moved, even
 * when a Redis crash rewound the record.
 */
export const VOLUME_MIGRATION_LABEL = 'ferry.migration';

/** The volumes a container mounts, by name, in mount order. */
export function mountedVolumes(info: ContainerInfo): string[] {
  return [...new Set(info.mounts.filter((m) => m.type === 'volume' && m.volumeName).map((m) => m.volumeName))];
}

function refuse(message: string, code: string): never {
  throw new StepError(`${message} (see ${WHAT_MOVES_DOC})`, { code, permanent: true });
}

/**
 * Preflight: every volume can move, before anything is copied or frozen. A volume with a
 * driver or options is not a folder Ferry can copy (it may be shared storage already); one
 * another container uses would be split; one of the same name on the destination holds
 * someone's data and is never overwritten.
 */
export async function checkVolumes(ctx: StepContext, info: ContainerInfo): Promise<string[]> {
  const { rec } = ctx;
  const names = mountedVolumes(info);
  const here = ctx.local.volumes;
  const there = ctx.remote(rec.to).podman.volumes;
  await Promise.all(
    names.map(async (name) => {
      const [vol, users, existing] = await Promise.all([here.inspect(name), here.users(name), there.inspect(name)]);
      if (!vol) refuse(`volume ${name} of container "${rec.container}" is missing on host ${rec.from}`, 'VOLUME_MISSING');
      const opts = Object.entries(vol.options).map(([k, v]) => `${k}=${v}`);
      if (vol.driver !== 'local' || opts.length > 0) {
        refuse(
          `volume ${name} (driver ${vol.driver}${opts.length ? `, options ${opts.join(',')}` : ''}) is not a plain local folder Ferry can copy; if both hosts reach the same storage, mount it as a bind mount declared shared (label ferry.shared-mounts), otherwise copy it yourself`,
          'VOLUME_NOT_LOCAL',
        );
      }
      const others = users.filter((id) => id !== info.id);
      if (others.length > 0) {
        refuse(`volume ${name} is also used by container ${others[0].slice(0, 12)} on host ${rec.from}: moving it would split their data; move or stop the other container first`, 'VOLUME_SHARED');
      }
      if (existing && existing.labels[VOLUME_MIGRATION_LABEL] !== rec.id) {
        refuse(`host ${rec.to} already has a volume named ${name}: Ferry never overwrites one; check what it holds and remove it (\`podman volume rm ${name}\` on ${rec.to}) before migrating`, 'VOLUME_EXISTS_ON_DESTINATION');
      }
    }),
  );
  return names;
}

export interface VolumeSync extends RsyncResult {
  name: string;
}

/**
 * Copies one volume to the destination, creating it there (labelled) when missing. Run
 * while the container runs, it moves the bulk; run again once the container is frozen, it
 * moves only what changed, and deletes there what was deleted here, so the destination
 * holds exactly what the source held at the freeze.
 */
async function syncVolume(ctx: StepContext, name: string, here: PodmanVolumes, there: PodmanVolumes): Promise<VolumeSync> {
  const { rec } = ctx;
  const dest = ctx.remote(rec.to).host;
  const src = await here.inspect(name);
  if (!src) throw new StepError(`volume ${name} disappeared from host ${rec.from}`, { code: 'VOLUME_MISSING', permanent: true });
  let target = await there.inspect(name);
  if (target && target.labels[VOLUME_MIGRATION_LABEL] !== rec.id) {
    throw new StepError(`host ${rec.to} got a volume named ${name} since preflight; not overwriting it`, { code: 'VOLUME_EXISTS_ON_DESTINATION', permanent: true });
  }
  if (!target) {
    await ctx.fence();
    target = await there.create(name, { [VOLUME_MIGRATION_LABEL]: rec.id });
  }
  if (target.driver !== 'local' || Object.keys(target.options).length > 0) {
    throw new StepError(`host ${rec.to} made volume ${name} with driver ${target.driver} and options ${JSON.stringify(target.options)}, not a plain local folder; not copying into it`, { code: 'VOLUME_NOT_LOCAL', permanent: true });
  }
  await ctx.fence();
  try {
    return { name, ...(await rsyncTo(ctx.localRunner, dest, src.mountpoint, target.mountpoint, ctx.config.timeouts.step.checkpoint)) };
  } catch (e: unknown) {
    // rsync's own failure is told as the step's; an abort (time limit, takeover) stays what it is.
    if (!(e instanceof CommandError || e instanceof ValidationError)) throw e;
    throw new StepError(`copying volume ${name} to host ${rec.to} failed: ${e.message.slice(-400)}`, { code: 'VOLUME_COPY_FAILED', permanent: e instanceof ValidationError, cause: e });
  }
}

/** Every volume, one after the other (they share the link; in parallel they only compete). */
export async function syncVolumes(ctx: StepContext, names: readonly string[]): Promise<VolumeSync[]> {
  const here = ctx.local.volumes;
  const there = ctx.remote(ctx.rec.to).podman.volumes;
  const out: VolumeSync[] = [];
  for (const name of names) out.push(await syncVolume(ctx, name, here, there));
  return out;
}

/** Rollback: the destination's copies this migration made; returns what could not be removed, with why. */
export async function removeCopiedVolumes(there: PodmanVolumes, migrationId: string): Promise<string[]> {
  const left: string[] = [];
  for (const name of await there.labelled(VOLUME_MIGRATION_LABEL, migrationId)) {
    try {
      await there.remove(name);
    } catch (e: unknown) {
      left.push(`volume ${name} (${coerceError(e).message})`);
    }
  }
  return left;
}

/**
 * Cleanup, once the source container is gone: the source's copy of each volume the
 * destination holds for this migration (the label proves it arrived). A volume some other
 * container took meanwhile is in use and stays, with a warning.
 */
export async function removeMovedSourceVolumes(here: PodmanVolumes, there: PodmanVolumes, migrationId: string): Promise<{ removed: string[]; kept: string[] }> {
  const removed: string[] = [];
  const kept: string[] = [];
  for (const name of await there.labelled(VOLUME_MIGRATION_LABEL, migrationId)) {
    if (!(await here.inspect(name))) continue;
    try {
      await here.remove(name);
      removed.push(name);
    } catch (e: unknown) {
      kept.push(`volume ${name} (${coerceError(e).message})`);
    }
  }
  return { removed, kept };
}

/** The volumes the destination holds for this migration that the source no longer has. */
export async function volumesMissingOnSource(here: PodmanVolumes, there: PodmanVolumes, migrationId: string): Promise<string[]> {
  const missing: string[] = [];
  for (const name of await there.labelled(VOLUME_MIGRATION_LABEL, migrationId)) if (!(await here.inspect(name))) missing.push(name);
  return missing;
}
