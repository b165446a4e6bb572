import type { MigrationRecord, MigrationState, StepName } from './model';
import { TERMINAL_STATES } from './model';

/** Pure record changes, shared by the step runner and the CLI, and unit-tested. */

export function withStepStarted(rec: MigrationRecord, step: StepName, host: string, attempt: number, now: number): MigrationRecord {
  rec.history.push({ step, host, attempt, startedAt: now });
  if (rec.state === 'queued') rec.state = 'running';
  rec.step = step;
  return rec;
}

function lastOpen(rec: MigrationRecord, step: StepName) {
  for (let i = rec.history.length - 1; i >= 0; i--) {
    const h = rec.history[i];
    if (h.step === step && h.finishedAt === undefined) return h;
  }
  return undefined;
}

export function withStepFinished(rec: MigrationRecord, step: StepName, now: number, outcome: { ok: true; result: Record<string, unknown> } | { ok: false; error: string }): MigrationRecord {
  const h = lastOpen(rec, step);
  if (h) {
    h.finishedAt = now;
    h.ok = outcome.ok;
    if (outcome.ok) h.result = outcome.result;
    else h.error = outcome.error;
  }
  return rec;
}

export function withState(rec: MigrationRecord, state: MigrationState, now: number, error?: string): MigrationRecord {
  rec.state = state;
  if (error !== undefined) rec.error = error;
  if (TERMINAL_STATES.has(state)) rec.finishedAt = now;
  return rec;
}
