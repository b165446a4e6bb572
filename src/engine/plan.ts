import type { MigrationRecord, StepName } from './model';

/** The forward chain of a migration. Rollback is not in it: it is entered on failure. */
export const FORWARD_STEPS: readonly StepName[] = ['preflight', 'checkpoint', 'transfer', 'restore', 'verify', 'cleanup'];

/** Rough share of a migration's time each step takes, for one overall percentage. */
const WEIGHT: Record<StepName, number> = { preflight: 5, checkpoint: 20, transfer: 35, restore: 25, verify: 10, cleanup: 5, rollback: 0 };

export function nextStep(step: StepName): StepName | undefined {
  const i = FORWARD_STEPS.indexOf(step);
  return i >= 0 ? FORWARD_STEPS[i + 1] : undefined;
}

/** Which host's worker runs a step: the one whose podman the step must touch. */
export function hostForStep(rec: Pick<MigrationRecord, 'from' | 'to'>, step: StepName): string {
  return step === 'restore' || step === 'verify' ? rec.to : rec.from;
}

/**
 * What to do when a step has failed for good. Before the checkpoint nothing changed, so
 * the migration just fails; from the checkpoint on the source container is frozen or gone
 * from view, so it must be brought back (rollback). Cleanup runs after the destination was
 * verified: the container is safe there and cleanup only keeps trying.
 */
export function onStepExhausted(step: StepName): 'fail' | 'rollback' | 'needs-attention' {
  switch (step) {
    case 'preflight':
      return 'fail';
    case 'checkpoint':
    case 'transfer':
    case 'restore':
    case 'verify':
      return 'rollback';
    case 'cleanup':
    case 'rollback':
      return 'needs-attention';
  }
}

export function overallPercent(step: StepName, stepPercent: number): number {
  let done = 0;
  for (const s of FORWARD_STEPS) {
    if (s === step) return Math.round(done + (WEIGHT[s] * Math.max(0, Math.min(100, stepPercent))) / 100);
    done += WEIGHT[s];
  }
  return 100;
}

export function archiveFileName(id: string, compression: 'none' | 'gzip' | 'zstd', encrypted = false): string {
  const ext = compression === 'none' ? '' : compression === 'gzip' ? '.gz' : '.zst';
  return `${id}.tar${ext}${encrypted ? '.enc' : ''}`;
}
