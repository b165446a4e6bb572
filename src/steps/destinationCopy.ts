import { StepError } from '../errors';
import { coerceError } from '../errors/coerceError';
import type { Podman } from '../podman/podman';
import { inspectFinishingRemoval, removeStorageOnlyCopy } from './storageCopy';

export interface ClearedDestination {
  removed: boolean;
  /** A copy that cannot run but could not be removed either (e.g. its disk is full): why. */
  stuck?: string;
}

/**
 * Rollback's first duty: the destination must not run the container before the source
 * does. Only a copy with the source's id is ours to remove. A copy that is not running
 * (its restore failed) may stay when podman cannot delete it, as on a disk too full to
 * write podman's own database: keeping the source down until someone frees space there
 * would lose the container's availability for nothing. Unknown states are never guessed:
 * a failed inspect throws, and so does a running copy that will not go.
 */
export async function clearDestination(podman: Podman, name: string, sourceId: string | undefined, host: string): Promise<ClearedDestination> {
  let removed = false;
  let stuck: string | undefined;
  // Our copy there may be half removed (an attempt stopped in the middle of its `podman rm`).
  const { info: there, finished } = await inspectFinishingRemoval(podman, name, sourceId);
  if (finished) removed = true;
  if (there && there.id === sourceId) {
    try {
      await podman.remove(name);
      removed = true;
    } catch (e: unknown) {
      const now = await podman.inspect(name);
      if (now?.id !== sourceId) removed = true;
      else if (now.running) throw e;
      else stuck = `a ${now.status} copy (id ${now.id.slice(0, 12)}) that podman could not remove: ${coerceError(e).message}`;
    }
  }
  // A removal cut short by a full disk can also leave a copy only podman's storage knows.
  try {
    if (await removeStorageOnlyCopy(podman, name, sourceId, host)) removed = true;
  } catch (e: unknown) {
    if (!(e instanceof StepError && e.code === 'DESTINATION_NAME_TAKEN')) {
      // Storage-only copies cannot run: not a reason to keep the source down.
      stuck ??= `a copy only podman's storage knows, which podman could not remove: ${coerceError(e).message}`;
    }
  }
  // And what only the runtime holds: a restore whose podman was killed leaves the container
  // running there, unknown to podman (Podman.reapRuntimeLeftover). The caller holds the lock.
  if (sourceId && (await podman.reapRuntimeLeftover(sourceId))) removed = true;
  return { removed, stuck };
}
