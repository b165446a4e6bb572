/**
 * The steps of a migration, in one table: what each is, where it runs, how it is retried
 * and what happens when it fails for good. Every other list of steps (config defaults,
 * progress weights, queue priorities, the runner) is derived from this one.
 *
 * The function behind each step is in src/steps/<name>.ts, bound by name in
 * src/steps/index.ts, whose type refuses a table entry without one.
 *
 * Reading it top to bottom is reading a migration:
 * - preflight on the source changes nothing (apart from copying a missing image);
 * - checkpoint freezes the container on the source and streams its archive to the destination;
 * - transfer sends the archive if the stream did not complete;
 * - restore and verify run on the destination;
 * - cutover runs the configured hooks (a load balancer, DNS) on the source, which reaches
 *   every host; a failing hook rolls the migration back or leaves a warning (hooks.onFailure);
 * - cleanup removes the source copy only after the destination was verified;
 * - rollback is not in the forward chain: it is entered when a step from checkpoint to
 *   cutover fails for good, and it brings the container back on the source.
 */

/** What to do when a step has failed for good (its attempts are used up or the error is permanent). */
export type OnExhausted =
  /** Nothing was touched yet: the migration just fails. */
  | 'fail'
  /** The source is frozen or gone from view: bring it back there. */
  | 'rollback'
  /** A person must look: cleanup after a verified destination, or a rollback that failed. */
  | 'needs-attention';

export interface StepInfo {
  /** The host whose podman the step touches, so whose worker runs it. */
  readonly runsOn: 'source' | 'destination';
  /** Share of the overall progress bar (forward steps add up to 100). */
  readonly weight: number;
  /**
   * BullMQ priority (lower runs first). Later steps go first, so a host finishes the
   * migrations it has started (and frees their frozen containers) before it starts
   * preflights of new ones.
   */
  readonly priority: number;
  readonly onExhausted: OnExhausted;
  /** Defaults of `retry.attempts.<step>` and `timeouts.step.<step>`. */
  readonly attempts: number;
  readonly timeoutMs: number;
}

export const STEP_TABLE = {
  preflight: { runsOn: 'source', weight: 5, priority: 10, onExhausted: 'fail', attempts: 3, timeoutMs: 300_000 },
  checkpoint: { runsOn: 'source', weight: 20, priority: 6, onExhausted: 'rollback', attempts: 3, timeoutMs: 600_000 },
  transfer: { runsOn: 'source', weight: 35, priority: 5, onExhausted: 'rollback', attempts: 5, timeoutMs: 3_600_000 },
  restore: { runsOn: 'destination', weight: 25, priority: 4, onExhausted: 'rollback', attempts: 3, timeoutMs: 600_000 },
  verify: { runsOn: 'destination', weight: 8, priority: 3, onExhausted: 'rollback', attempts: 3, timeoutMs: 120_000 },
  cutover: { runsOn: 'source', weight: 2, priority: 2, onExhausted: 'rollback', attempts: 3, timeoutMs: 120_000 },
  cleanup: { runsOn: 'source', weight: 5, priority: 2, onExhausted: 'needs-attention', attempts: 8, timeoutMs: 120_000 },
  rollback: { runsOn: 'source', weight: 0, priority: 1, onExhausted: 'needs-attention', attempts: 8, timeoutMs: 600_000 },
} as const satisfies Record<string, StepInfo>;

export type StepName = keyof typeof STEP_TABLE;

/** Every step, in the order of a migration's life; rollback comes after everything. */
export const STEP_NAMES = Object.keys(STEP_TABLE) as readonly StepName[];

/** The forward chain: every step but rollback, which is entered on failure. */
export const FORWARD_STEPS: readonly StepName[] = STEP_NAMES.filter((s) => s !== 'rollback');

export function isStepName(s: unknown): s is StepName {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(STEP_TABLE, s);
}

export function stepInfo(step: StepName): StepInfo {
  return STEP_TABLE[step];
}

export function nextStep(step: StepName): StepName | undefined {
  const i = FORWARD_STEPS.indexOf(step);
  return i >= 0 ? FORWARD_STEPS[i + 1] : undefined;
}

/** Step index in the life of a migration; rollback comes after everything. */
export function stepOrder(step: StepName): number {
  return STEP_NAMES.indexOf(step);
}

/** Which host's worker runs a step. */
export function hostForStep(rec: { from: string; to: string }, step: StepName): string {
  return STEP_TABLE[step].runsOn === 'destination' ? rec.to : rec.from;
}

export function onStepExhausted(step: StepName): OnExhausted {
  return STEP_TABLE[step].onExhausted;
}

/** One overall percentage from the step reached and how far it is. */
export function overallPercent(step: StepName, stepPercent: number): number {
  let done = 0;
  for (const s of FORWARD_STEPS) {
    const w = STEP_TABLE[s].weight;
    if (s === step) return Math.round(done + (w * Math.max(0, Math.min(100, stepPercent))) / 100);
    done += w;
  }
  return 100;
}
