import type { FerryConfig } from '../config/load';
import { findHost } from '../config/load';
import { coerceError, StepError } from '../errors';
import { HostLock, lockContainerOnHost } from '../exec/hostLock';
import { CommandRunner, KILL_GRACE_MS, limited } from '../exec/runner';
import { Podman } from '../podman/podman';
import { MigrationRecord, TERMINAL_STATES } from './model';

/** How often a deadline asks again while a restore may still be under way. */
export const OVERDUE_RECHECK_MS = 30_000;

export type OverdueVerdict =
  /** The destination does not answer: only a person can tell where the container runs. */
  | { kind: 'unreachable'; why: string }
  /** It runs there: nothing is frozen that a deadline must guard; asked again until the migration moves on. */
  | { kind: 'runs-there'; recheckAt: number }
  /** A restore may still be under way (within its time limit, or holding the container's lock there). */
  | { kind: 'wait'; recheckAt: number; why: string }
  /**
   * Past every restore's time limit, no attempt holds the container there and it does not run
   * there: the source may take it back. The lock is held for the caller, who releases it once
   * the record says rollback (any restore attempt that then gets the lock is fenced out).
   */
  | { kind: 'take-back'; lock: HostLock; restoreStartedAt: number | undefined };

export interface OverdueDeps {
  config: FerryConfig;
  remoteRunner(host: string): CommandRunner;
  /** Between the tries of an unanswered destination (REACH_PAUSE_MS). */
  pauseMs?: number;
}

/** The time limit of each question put to the destination. */
const ASK_MS = 15_000;
/** An unanswered destination is tried this many times, this far apart, before a person is called. */
const REACH_TRIES = 3;
const REACH_PAUSE_MS = 5_000;

/** Why the host does not answer after a few tries (a blip must not end the migration), or null. */
async function unanswered(runner: CommandRunner, pauseMs: number): Promise<string | null> {
  let why = '';
  for (let i = 0; i < REACH_TRIES; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, pauseMs));
    const res = await runner.run(['true'], { timeoutMs: ASK_MS }).catch((e: unknown) => ({ code: null, stdout: '', stderr: coerceError(e).message }));
    if (res.code === 0) return null;
    why = res.stderr.trim().slice(0, 200) || `exit ${String(res.code)}`;
  }
  return why;
}

/**
 * A frozen container's deadline passed after restore started on the destination (finding 21
 * in docs/reliability.md). The source cannot take it back on the record's word: the restore
 * may have worked there. Nor may it just stop looking: a destination worker that died
 * mid-restore and stays down would leave the container frozen with no deadline at all. So the
 * destination is asked, and asked again, until the migration moves on or it can be proved that
 * no restore runs there any more.
 */
export async function judgeOverdueRestore(rec: MigrationRecord, deps: OverdueDeps, now = Date.now()): Promise<OverdueVerdict> {
  const { config } = deps;
  const host = findHost(config, rec.to);
  if (!host) return { kind: 'unreachable', why: `host ${rec.to} is not in this worker's inventory` };
  const runner = deps.remoteRunner(rec.to);
  // A podman hung there (on the very restore being judged) must not hold this job, and with it
  // one of the few slots every other frozen container's deadline needs.
  const podman = new Podman(limited(runner, ASK_MS), host.podman);
  const sourceId = rec.source?.id;
  const recheckAt = now + OVERDUE_RECHECK_MS;
  /** Whether it runs there (as a verdict), or null when it does not. */
  const runsThere = async (): Promise<OverdueVerdict | null> => {
    try {
      const info = await podman.inspect(rec.container);
      if (info && info.running && (!sourceId || info.id === sourceId)) return { kind: 'runs-there', recheckAt };
      // A restore whose podman was killed can leave the container running under its runtime,
      // unseen by podman (Podman.reapRuntimeLeftover): it runs there all the same.
      return sourceId && (await podman.runtimeHolds(sourceId)) ? { kind: 'runs-there', recheckAt } : null;
    } catch (e: unknown) {
      return { kind: 'wait', recheckAt, why: `podman on ${rec.to} did not answer (${coerceError(e).message})` };
    }
  };
  const unreachable = await unanswered(runner, deps.pauseMs ?? REACH_PAUSE_MS);
  if (unreachable) return { kind: 'unreachable', why: unreachable };
  const seen = await runsThere();
  if (seen) return seen;
  // The latest restore attempt marked its start; its own time limit (and the kill that ends it)
  // bounds it. A verify that found nothing running would roll back; its time counts too.
  const started = rec.restoreStartedAt ?? rec.frozenAt ?? now;
  const budgetEnd = started + config.timeouts.step.restore + (rec.step === 'verify' ? config.timeouts.step.verify : 0) + 5 * KILL_GRACE_MS;
  if (now < budgetEnd) return { kind: 'wait', recheckAt: Math.max(budgetEnd, now + 1000), why: 'the restore may still be within its time limit' };
  let lock: HostLock;
  try {
    lock = await lockContainerOnHost(runner, rec.to, rec.container, 5_000);
  } catch (e: unknown) {
    const busy = e instanceof StepError && e.code === 'HOST_LOCK_BUSY';
    return { kind: 'wait', recheckAt, why: busy ? `an attempt holds the container on ${rec.to}` : coerceError(e).message };
  }
  // Under the lock no attempt acts there: what is seen now stays so until it is released.
  const locked = await runsThere();
  if (locked) {
    await lock.release();
    return locked;
  }
  return { kind: 'take-back', lock, restoreStartedAt: rec.restoreStartedAt };
}

/** A live migration whose restore started on the destination: what the deadline must then judge there. */
export function restoreUnderWay(r: Pick<MigrationRecord, 'state' | 'step'>): boolean {
  return !TERMINAL_STATES.has(r.state) && (r.step === 'restore' || r.step === 'verify');
}
