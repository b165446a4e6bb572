import type { StepName } from '../engine/steps';
import type { ArchiveInfo, MigrationRecord, MigrationState } from '../engine/model';
import type { CriuStats } from '../podman/parse';
import { Category, categoryOf } from '../engine/states';
import { overallPercent } from '../engine/steps';

export interface StepView {
  step: StepName;
  host: string;
  attempt: number;
  startedAt: number;
  durationMs?: number;
  ok?: boolean;
  error?: string;
  bytes?: number;
}

/** One migration as people look at it: the record with what is derived from it worked out. */
export interface MigrationView {
  id: string;
  container: string;
  from: string;
  to: string;
  state: MigrationState;
  category: Category;
  step: StepName;
  batchId?: string;
  /** Overall progress from the step reached (finer progress comes live from events). */
  percent: number;
  bytes?: number;
  createdAt: number;
  finishedAt?: number;
  elapsedMs: number;
  downtimeMs?: number;
  error?: string;
  warnings: string[];
  archive?: ArchiveInfo;
  checkpointStats?: Omit<CriuStats, 'raw'>;
  restoreStats?: Omit<CriuStats, 'raw'>;
  steps: StepView[];
}

function stats(s: CriuStats | undefined): Omit<CriuStats, 'raw'> | undefined {
  if (!s) return undefined;
  // The raw CRIU output can be large and says nothing the parsed numbers do not.
  const { raw: _raw, ...rest } = s;
  return rest;
}

export function migrationView(rec: MigrationRecord, now = Date.now()): MigrationView {
  const category = categoryOf(rec.state);
  const percent = rec.state === 'succeeded' ? 100 : rec.state === 'rolling-back' || rec.step === 'rollback' ? 0 : overallPercent(rec.step, 0);
  return {
    id: rec.id,
    container: rec.container,
    from: rec.from,
    to: rec.to,
    state: rec.state,
    category,
    step: rec.step,
    batchId: rec.batchId,
    percent,
    bytes: rec.bytesTransferred ?? rec.archive?.bytes,
    createdAt: rec.createdAt,
    finishedAt: rec.finishedAt,
    elapsedMs: (rec.finishedAt ?? now) - rec.createdAt,
    downtimeMs: rec.frozenAt && rec.answeredAt ? rec.answeredAt - rec.frozenAt : undefined,
    error: rec.error,
    warnings: rec.warnings,
    archive: rec.archive,
    checkpointStats: stats(rec.checkpointStats),
    restoreStats: stats(rec.restoreStats),
    steps: rec.history.map((h) => ({
      step: h.step,
      host: h.host,
      attempt: h.attempt,
      startedAt: h.startedAt,
      durationMs: h.finishedAt !== undefined ? h.finishedAt - h.startedAt : undefined,
      ok: h.ok,
      error: h.error,
      bytes: typeof h.result?.bytes === 'number' ? h.result.bytes : undefined,
    })),
  };
}
