import { FerryConfig, findHost } from '../config/load';
import { coerceError, FerryError, ValidationError } from '../errors';
import { checkContainerName, checkHostName } from '../names';
import type { HostQueues } from '../queues';
import type { MigrationStore } from '../store/migrationStore';
import { lockPairs, newMigrationId } from '../store/migrationStore';
import { HealthProbe, LockPair, MEMORY_COPY_MODES, MemoryCopy, MigrationRecord, RECORD_VERSION } from './model';
import { withState } from './transitions';

export interface MigrateRequest {
  container: string;
  from: string;
  to: string;
  probe?: HealthProbe;
  batchId?: string;
  /** Given by batches, which choose ids up front so a resumed batch re-submits idempotently. */
  id?: string;
  priority?: number;
  /** How memory moves; default checkpoint.memoryCopy. */
  memoryCopy?: MemoryCopy;
}

export interface SubmitDeps {
  config: FerryConfig;
  store: MigrationStore;
  queues: HostQueues;
  isCordoned(host: string): Promise<boolean>;
}

/**
 * Validates a request against the inventory, locks the container on both hosts, records
 * the migration and queues its preflight. With a given id, submitting twice is harmless.
 */
export async function submitMigration(deps: SubmitDeps, req: MigrateRequest): Promise<MigrationRecord> {
  const { config, store, queues } = deps;
  const container = checkContainerName(req.container);
  const from = checkHostName(req.from);
  const to = checkHostName(req.to);
  for (const [role, name] of [
    ['source', from],
    ['destination', to],
  ] as const) {
    if (!findHost(config, name)) {
      throw new ValidationError(`unknown ${role} host "${name}": the inventory has ${config.hosts.map((h) => h.name).join(', ') || 'no hosts'}`);
    }
  }
  if (req.memoryCopy !== undefined && !(MEMORY_COPY_MODES as readonly string[]).includes(req.memoryCopy)) {
    throw new ValidationError(`unknown memory copy mode ${JSON.stringify(req.memoryCopy)}: use ${MEMORY_COPY_MODES.join(', ')}`);
  }
  if (from === to) throw new ValidationError(`source and destination are the same host ("${from}"): nothing to migrate`);
  if (req.id) {
    const existing = await store.get(req.id);
    if (existing) return existing;
  }
  if (await deps.isCordoned(to)) throw new ValidationError(`destination host "${to}" is cordoned (draining or in maintenance): choose another host or \`ferry undrain ${to}\``);
  const now = Date.now();
  const id = req.id ?? newMigrationId(now);
  const pairs = lockPairs({ from, to, container });
  const lock = await store.lock(id, pairs);
  if (!lock.ok) {
    throw new FerryError(`container "${container}" is already part of migration ${lock.heldBy} (on host ${lock.host}); wait for it or cancel it first`, { code: 'CONFLICT', permanent: true });
  }
  const rec: MigrationRecord = {
    v: RECORD_VERSION,
    id,
    container,
    from,
    to,
    state: 'queued',
    step: 'preflight',
    createdAt: now,
    updatedAt: now,
    probe: req.probe ?? { kind: 'auto' },
    batchId: req.batchId,
    memoryCopy: req.memoryCopy ?? config.checkpoint.memoryCopy,
    history: [],
    warnings: [],
  };
  try {
    try {
      await store.create(rec);
    } catch (e: unknown) {
      // Two resumers of one batch may race to submit the same id: the first one wins.
      const existing = req.id ? await store.get(req.id) : null;
      if (existing) return existing;
      throw e;
    }
    await queues.enqueue(from, id, 'preflight', req.priority ? { priority: req.priority } : {});
    // A Redis crash between the record and the job (appendfsync everysec drops its last
    // second) kept the job and lost the record: the id would answer "unknown migration" for
    // ever (nemesis seed 1520022). Its job fails on that at once and touches nothing. Only a
    // definite "no record" says so; an unreachable Redis leaves the answer as it was.
    if ((await store.get(id).catch(() => rec)) === null) {
      throw new FerryError(`migration ${id} was lost by Redis as it was submitted (a crash or failover dropped its record); nothing was changed on any host: submit it again`, { code: 'SUBMISSION_LOST' });
    }
  } catch (e: unknown) {
    return settleFailedSubmission(store, rec, pairs, coerceError(e));
  }
  return rec;
}

/**
 * A submission failed part way: what the user is told must be what happens. Its record may
 * exist already, queued, and the repair loop would run it (its job may even be queued: a reply
 * lost on a dropped connection). Withdrawn while nothing has started it, the migration never
 * runs and its locks go; one a worker already started is reported as submitted; and when Redis
 * cannot say, the locks stay (they hold a migration that may run) and the error says so.
 */
async function settleFailedSubmission(store: MigrationStore, rec: MigrationRecord, pairs: LockPair[], err: Error): Promise<MigrationRecord> {
  if (err instanceof FerryError && err.code === 'SUBMISSION_LOST') {
    await store.unlock(rec.id, pairs);
    throw err;
  }
  let withdrawn = false;
  let now: MigrationRecord;
  try {
    now = await store.update(rec.id, (r) => {
      withdrawn = false;
      if (r.state !== 'queued' || r.attempt || r.createdAt !== rec.createdAt) return null;
      withdrawn = true;
      return withState(r, 'failed', Date.now(), `not submitted: ${err.message}`);
    });
  } catch (e: unknown) {
    const why = coerceError(e);
    if (why instanceof FerryError && why.code === 'NOT_FOUND') {
      await store.unlock(rec.id, pairs);
      throw err;
    }
    throw new FerryError(`submitting migration ${rec.id} failed (${err.message}) and Redis could not say whether it was recorded (${why.message}): \`ferry status ${rec.id}\` shows it once Redis answers`, {
      code: 'SUBMISSION_UNKNOWN',
      cause: err,
    });
  }
  if (!withdrawn) return now;
  await store.ended(now, 'failed', now.finishedAt ?? Date.now(), now.error);
  throw err;
}
