import { StepError } from '../errors';
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
