import type { Job } from 'bullmq';
import { coerceError } from '../errors';

export interface JobLockKeeper {
  stop(): void;
}

/**
 * Renews one delivery's job lock, by that delivery's own token, for as long as its attempt runs,
 * beside BullMQ's own renewal.
 *
 * Why: BullMQ's worker tracks the locks it renews by job id. When a stalled job is delivered
 * again to the same worker while the older delivery still runs, the older one's end untracks the
 * id, so the newer delivery's lock is no longer renewed: it stalls in turn, is delivered again,
 * stops its predecessor, and the chain never ends (nemesis seed 920001: a checkpoint attempt
 * superseded every few seconds for minutes while the container stayed frozen). Renewing by token
 * keeps the newest delivery alive. A renewal that finds another token, or none, means the job is
 * no longer this delivery's: `onLost` is called once and the keeper stops. A renewal that cannot
 * reach Redis is reported and tried again; BullMQ's stalled check decides what a lapse means.
 */
export function keepJobLock(job: Job<unknown>, token: string, lockMs: number, on: { lost(why: string): void; error(e: Error): void }): JobLockKeeper {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const renew = async (): Promise<void> => {
    try {
      const held = await job.extendLock(token, lockMs);
      if (stopped) return;
      if (held !== 1) {
        stopped = true;
        on.lost('its job lock is now held by another delivery, or lapsed');
        return;
      }
    } catch (e: unknown) {
      if (stopped) return;
      on.error(coerceError(e));
    }
    if (!stopped) timer = setTimeout(() => void renew(), Math.max(100, Math.floor(lockMs / 3)));
  };
  // At once: this delivery may already have lost BullMQ's renewal to an older one that ended.
  void renew();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
