import type { FerryConfig } from '../config/load';
import { AlreadyMovedError, coerceError, StepError } from '../errors';
import type { StepContext } from './context';
import type { FrozenMarker } from '../archive/frozenMarker';
import { removeFrozenMarker } from '../archive/frozenMarker';
import type { CommandRunner } from '../exec/runner';
import type { Podman } from '../podman/podman';
import { restoreFrozen } from './recoverFrozen';
import { removeFile } from '../archive/localFiles';
import { archiveCopies } from '../engine/files';

export type FrozenVerdict =
  /** Running here again (or gone, or replaced): the marker is stale and was removed. */
  | { kind: 'stale' }
  /**
   * Runs on the destination: the source keeps a stopped copy, which is no loss. The marker
   * stays: it is the only proof of the freeze until the caller has written it down.
   */
  | { kind: 'on-destination' }
  /** The destination could not be asked: nothing was done, try again later. */
  | { kind: 'unknown'; why: string }
  /** Brought back here, where it was frozen. */
  | { kind: 'restored'; how: string; warning?: string };

export interface FrozenRecoveryDeps {
  config: FerryConfig;
  workDir: string;
  local: Podman;
  localRunner: CommandRunner;
  /** The destination's podman, or a throw when it cannot be reached. */
  destination(): Podman;
  /**
   * Called right before the container or its files are touched, and again after its restore
   * (which only its own time limit stops, so it may outlive the attempt): may throw to stop.
   */
  fence?(): Promise<void>;
  /**
   * Given only by a caller that holds the destination's container lock (no restore can be
   * under way there): removes a copy that does not run, so the container may come back here.
   */
  removeIdleDestinationCopy?(): Promise<void>;
}

/**
 * A container this host froze for a migration whose record no longer knows it (a Redis crash
 * that lost its last writes, or the record itself). It is brought back here only when the
 * destination, asked first, does not run it: restoring it here while it runs there would
 * make two.
 */
export async function recoverFrozen(marker: FrozenMarker, deps: FrozenRecoveryDeps): Promise<FrozenVerdict> {
  const info = await deps.local.inspect(marker.container);
  if (info?.id !== marker.containerId || info.running) {
    await removeFrozenMarker(deps.workDir, marker.migrationId);
    return { kind: 'stale' };
  }
  let there;
  try {
    there = await deps.destination().inspect(marker.container);
  } catch (e: unknown) {
    return { kind: 'unknown', why: coerceError(e).message };
  }
  if (there?.id === marker.containerId && there.running) return { kind: 'on-destination' };
  // There but not running: a restore may be under way (a large one takes tens of seconds)
  // and start it any moment. Only rollback, which waits for the destination's lock and
  // removes that copy first, may bring the container back here.
  // podman there may also have lost a copy its runtime still runs (podman killed mid-restore).
  let runtimeOnly = false;
  if (there?.id !== marker.containerId) {
    try {
      runtimeOnly = await deps.destination().runtimeHolds(marker.containerId);
    } catch (e: unknown) {
      return { kind: 'unknown', why: coerceError(e).message };
    }
  }
  if (there?.id === marker.containerId || runtimeOnly) {
    if (!deps.removeIdleDestinationCopy) return { kind: 'unknown', why: `host ${marker.to} holds a copy that does not run (${there?.status ?? 'known only to its runtime'}); a restore may be under way there` };
    await deps.fence?.();
    await deps.removeIdleDestinationCopy();
  }
  await deps.fence?.();
  const back = await restoreFrozen(deps.local, deps.localRunner, info, deps.config, deps.config.timeouts.step.rollback, marker.migrationId);
  // A stopped attempt leaves the marker: the next pass finds it stale (running here again).
  await deps.fence?.();
  await removeFrozenMarker(deps.workDir, marker.migrationId);
  return { kind: 'restored', ...back };
}

/**
 * For a caller holding the destination's lock: the copy there that does not run (a restore
 * that failed or was cut short) goes, and whatever its runtime still holds of it.
 */
export async function removeIdleCopy(there: Podman, marker: Pick<FrozenMarker, 'container' | 'containerId'>): Promise<void> {
  if ((await there.inspect(marker.container))?.id === marker.containerId) await there.remove(marker.container);
  await there.reapRuntimeLeftover(marker.containerId);
}

/**
 * Whether this migration froze the container with this id: its record says so, or the source's
 * own marker does (fsync'd before every freeze; a Redis crash can rewind the record to before
 * it). Checkpointed alone is not enough: someone else may have frozen it (frozenByOther).
 */
export function frozenByThisMigration(rec: { frozenAt?: number }, marker: FrozenMarker | null, containerId: string | undefined): boolean {
  return !!rec.frozenAt || (!!containerId && marker?.containerId === containerId);
}

/**
 * A checkpointed container this migration did not freeze (no frozenAt in its record, no marker
 * of its own on the host): someone else's, whom only a person can ask. Never brought back.
 */
export function frozenByOther(container: string, host: string): StepError {
  return new StepError(
    `container "${container}" on host ${host} is checkpointed, but not by this migration (another migration, another Ferry installation sharing the host, or by hand): Ferry does not bring it back, since whoever froze it may be restoring it elsewhere; find out who, then restore it (\`podman container restore ${container}\`) or migrate it again`,
    { code: 'FROZEN_BY_OTHER', permanent: true },
  );
}

/**
 * recoverFrozen for a step attempt, on its source host: fenced before the restore, and the
 * answers that must stop the step thrown as its errors (ask again later; or the container
 * already moved, and the migration goes on from verify).
 */
export async function recoverFrozenInStep(ctx: StepContext, marker: FrozenMarker): Promise<FrozenVerdict> {
  const { rec } = ctx;
  // The destination's lock, as rollback and the repair pass take it: a restore attempt there
  // that lost its lease (paused between its mark and podman) waits, and is then fenced out.
  let destLock;
  try {
    destLock = await ctx.lockOn(rec.to);
  } catch (e: unknown) {
    throw new StepError(`container "${marker.container}" is frozen on host ${rec.from}; host ${rec.to} must be asked before it is brought back: ${coerceError(e).message}`, { code: 'FROZEN_UNKNOWN', cause: e });
  }
  let verdict: FrozenVerdict;
  try {
    const there = ctx.remote(rec.to).podman;
    verdict = await recoverFrozen(marker, {
      config: ctx.config,
      workDir: ctx.files.source.dir,
      local: ctx.local,
      localRunner: ctx.localRunner,
      destination: () => there,
      fence: () => ctx.fence(),
      removeIdleDestinationCopy: () => removeIdleCopy(there, marker),
    });
  } finally {
    await destLock.release();
  }
  if (verdict.kind === 'unknown') {
    throw new StepError(`container "${marker.container}" is frozen on host ${rec.from}; host ${rec.to} must be asked before it is brought back: ${verdict.why}`, { code: 'FROZEN_UNKNOWN' });
  }
  if (verdict.kind === 'on-destination') {
    throw new AlreadyMovedError(`container "${marker.container}" already runs on host ${rec.to}, though this migration's record lost that progress (a Redis crash); going on from verify there`, marker.containerId, marker.at);
  }
  if (verdict.kind === 'restored') {
    // Said at once: the step may yet fail, and its next attempt finds the container running.
    if (verdict.warning) await ctx.mark({ warnings: [...rec.warnings, verdict.warning] });
    // The archives the superseded checkpoint wrote (and streamed) belong to no one now: a
    // checkpoint that runs again writes its own, and a cancel would otherwise leave them.
    // recoverFrozen fenced after the restore, so only the current attempt gets here.
    const { source: here, destination: there } = ctx.files;
    for (const f of archiveCopies(here)) await removeFile(f);
    await ctx
      .remote(rec.to)
      .runner.run(['rm', '-f', '--', ...archiveCopies(there)])
      .catch(() => undefined);
  }
  return verdict;
}
