import { CommandError, StepError } from '../errors';
import { halfRemovedId } from '../podman/parse';
import type { ContainerInfo } from '../podman/parse';
import type { Podman } from '../podman/podman';

/**
 * Removes a copy of the container that only podman's storage still holds (a removal cut
 * short by a full disk leaves one): inspect cannot see it, but it keeps the container's id
 * taken, so every later restore of this container on the host would fail. Only a copy
 * with the source container's id is ours to remove.
 */
export async function removeStorageOnlyCopy(podman: Podman, name: string, sourceId: string | undefined, host: string): Promise<boolean> {
  const ids = await podman.storageOnlyIds(name);
  if (ids.length === 0) return false;
  const foreign = ids.find((id) => id !== sourceId);
  if (foreign) {
    throw new StepError(`host ${host}'s podman storage holds another container named "${name}" (id ${foreign.slice(0, 12)}, storage only); not restoring over it`, { code: 'DESTINATION_NAME_TAKEN', permanent: true });
  }
  // By id, never by name: a tracked container of someone else may carry the name now.
  for (const id of ids) await podman.remove(id);
  return true;
}

/**
 * inspect, for a host where an attempt may have been stopped in the middle of its `podman rm`
 * (a lost job lock): podman then keeps the container with its storage gone, and every inspect
 * fails until a removal finishes it. Our copy (the source container's id) is removed again,
 * `beforeRemove` first (a fence); anyone else's error stands. `finished`: it was ours, and is gone.
 */
export async function inspectFinishingRemoval(podman: Podman, name: string, sourceId: string | undefined, beforeRemove?: () => Promise<void>): Promise<{ info: ContainerInfo | null; finished: boolean }> {
  try {
    return { info: await podman.inspect(name), finished: false };
  } catch (e: unknown) {
    if (!(e instanceof CommandError) || !sourceId || halfRemovedId(e.stderr) !== sourceId) throw e;
    await beforeRemove?.();
    await podman.remove(sourceId);
    return { info: await podman.inspect(name), finished: true };
  }
}
