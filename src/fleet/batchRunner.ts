import type { MigrationRecord } from '../engine/model';
import { TERMINAL_STATES } from '../engine/model';
import { SubmitDeps, submitMigration } from '../engine/submit';
import { coerceError } from '../errors';
import type { MigrationStore } from '../store/migrationStore';
import { newMigrationId } from '../store/migrationStore';
import { BatchStore, newBatchId, slotOf } from './batchStore';
import { batchCounts } from './model';
import type { BatchItem, BatchRecord, BatchView } from './model';

/**
 * How long a periodic reconcile leaves a picked slot without a migration record to whoever
 * picked it: submitting takes milliseconds, so one still recordless after this was abandoned.
 */
export const BATCH_RECORDLESS_GRACE_MS = 30_000;

export interface BatchRequest {
  kind: 'batch' | 'drain';
  items: Omit<BatchItem, 'index' | 'migrationId'>[];
  maxParallel: number;
  perHost: number;
  drainHost?: string;
  stopped?: string[];
  skipped?: { container: string; reason: string }[];
  scheduleId?: string;
}

/**
 * Runs batches as a sliding window: as many migrations as the limits allow start at once,
 * and each one that ends frees its slot and starts the next (from whichever process saw it
 * end: a worker, or the CLI cancelling). No timers: ends of migrations drive everything,
 * and reconcile() repairs a window left behind by a crash.
 */
export class BatchRunner {
  constructor(
    private readonly batches: BatchStore,
    private readonly store: MigrationStore,
    private readonly submit: SubmitDeps,
  ) {}

  /** Slots seen picked without a migration record, and since when (see reconcile). */
  private readonly recordlessSince = new Map<string, number>();

  async create(req: BatchRequest): Promise<BatchRecord> {
    const now = Date.now();
    const b: BatchRecord = {
      id: newBatchId(now),
      kind: req.kind,
      state: 'running',
      createdAt: now,
      maxParallel: req.maxParallel,
      perHost: req.perHost,
      items: req.items.map((it, index) => ({ ...it, index, migrationId: newMigrationId(now + index) })),
      drainHost: req.drainHost,
      stopped: req.stopped,
      skipped: req.skipped,
      scheduleId: req.scheduleId,
    };
    await this.batches.create(b);
    await this.fill(b.id);
    return b;
  }

  /** Starts pending items while the limits allow. */
  async fill(batchId: string): Promise<void> {
    const b = await this.batches.get(batchId);
    if (b?.state !== 'running' || b.cancelRequested) {
      await this.maybeFinish(batchId);
      return;
    }
    for (;;) {
      const slot = await this.batches.pick(b);
      if (!slot) break;
      await this.start(b, b.items[Number(slot.split('|')[0])], slot);
    }
    await this.maybeFinish(batchId);
  }

  private async start(b: BatchRecord, item: BatchItem, slot: string): Promise<void> {
    // A cancel may have come in since this slot was picked: the item does not start (the
    // cancel left its slot to us or to reconcile, as it had no migration yet).
    if ((await this.batches.get(b.id))?.cancelRequested) {
      await this.batches.done(b.id, slot);
      return;
    }
    try {
      await submitMigration(this.submit, { container: item.container, from: item.from, to: item.to, probe: item.probe, id: item.migrationId, batchId: b.id });
    } catch (e: unknown) {
      // The slot is freed only when no migration of the item can run: a refused submission
      // leaves none or a failed one, but one that could not tell (Redis unreachable) may have
      // left it live, and its end frees the slot (or reconcile does, later).
      const rec = await this.store.get(item.migrationId).catch(() => undefined);
      if (rec === undefined || (rec && !TERMINAL_STATES.has(rec.state))) return;
      // Refused before it began (lock held, host cordoned...): recorded as failed so the
      // batch reports it, and its slot goes to the next item.
      if (!rec) await this.recordRefused(b, item, coerceError(e).message);
      await this.batches.done(b.id, slot);
    }
  }

  private async recordRefused(b: BatchRecord, item: BatchItem, error: string): Promise<void> {
    const now = Date.now();
    const rec: MigrationRecord = {
      id: item.migrationId,
      container: item.container,
      from: item.from,
      to: item.to,
      state: 'failed',
      step: 'preflight',
      createdAt: now,
      updatedAt: now,
      finishedAt: now,
      probe: item.probe ?? { kind: 'auto' },
      batchId: b.id,
      history: [],
      warnings: [],
      error,
    };
    try {
      await this.store.create(rec);
    } catch {
      // Already recorded by an earlier attempt.
    }
  }

  /** Called by whoever saw a migration end. Safe to call more than once for one migration. */
  async onMigrationTerminal(rec: MigrationRecord): Promise<void> {
    if (!rec.batchId) return;
    const b = await this.batches.get(rec.batchId);
    const item = b?.items.find((i) => i.migrationId === rec.id);
    if (!b || !item) return;
    await this.batches.done(b.id, slotOf(item));
    await this.fill(b.id);
  }

  /**
   * After a crash anywhere: re-submit what was picked but never recorded, free slots of ended
   * migrations, refill. A slot picked but not recorded yet may be another process's submission
   * under way: such a slot is acted on only once this process has seen it so for `graceMs`
   * (default BATCH_RECORDLESS_GRACE_MS; a process starting up only notes it, and its periodic
   * pass acts). Acting at once raced a live picker: a cancel then freed the slot of a migration
   * about to start, and two processes submitted one item.
   */
  async reconcile(batchId: string, opts: { graceMs?: number } = {}): Promise<void> {
    const b = await this.batches.get(batchId);
    if (!b) return;
    const seen = new Set<string>();
    for (const slot of await this.batches.running(batchId)) {
      const item = b.items[Number(slot.split('|')[0])];
      const rec = await this.store.get(item.migrationId);
      if (!rec) {
        const key = `${batchId} ${slot}`;
        seen.add(key);
        const since = this.recordlessSince.get(key) ?? Date.now();
        this.recordlessSince.set(key, since);
        if (Date.now() - since < (opts.graceMs ?? BATCH_RECORDLESS_GRACE_MS)) continue;
        this.recordlessSince.delete(key);
        if (b.cancelRequested) await this.batches.done(b.id, slot);
        else await this.start(b, item, slot);
      } else if (TERMINAL_STATES.has(rec.state)) {
        await this.batches.done(b.id, slot);
      }
    }
    for (const key of this.recordlessSince.keys()) if (key.startsWith(`${batchId} `) && !seen.has(key)) this.recordlessSince.delete(key);
    await this.fill(batchId);
  }

  async reconcileAll(opts: { graceMs?: number } = {}): Promise<void> {
    const active = await this.batches.active();
    // Sightings of batches that ended meanwhile are forgotten.
    for (const key of this.recordlessSince.keys()) if (!active.includes(key.split(' ')[0])) this.recordlessSince.delete(key);
    for (const id of active) await this.reconcile(id, opts);
  }

  private async maybeFinish(batchId: string): Promise<void> {
    const b = await this.batches.get(batchId);
    if (b?.state !== 'running') return;
    if ((await this.batches.running(batchId)).length > 0 || (await this.batches.pendingCount(batchId)) > 0) return;
    b.state = b.cancelRequested ? 'cancelled' : 'done';
    b.finishedAt = Date.now();
    await this.batches.save(b);
  }

  /** Queued items never start; running migrations are asked to cancel (they finish or roll back). */
  async cancel(batchId: string, cancelMigration: (id: string) => Promise<MigrationRecord>): Promise<BatchRecord | null> {
    const b = await this.batches.get(batchId);
    if (!b) return null;
    if (b.state === 'running') {
      b.cancelRequested = true;
      await this.batches.save(b);
      await this.batches.dropPending(batchId);
      for (const slot of await this.batches.running(batchId)) {
        const item = b.items[Number(slot.split('|')[0])];
        // No record yet: another process may be submitting it right now. Its start sees the
        // cancel and frees the slot; if that process died, reconcile does.
        if (!(await this.store.get(item.migrationId))) continue;
        const rec = await cancelMigration(item.migrationId);
        if (TERMINAL_STATES.has(rec.state)) await this.batches.done(b.id, slot);
      }
      await this.maybeFinish(batchId);
    }
    return this.batches.get(batchId);
  }

  async view(batchId: string): Promise<BatchView | null> {
    const b = await this.batches.get(batchId);
    if (!b) return null;
    const items = await Promise.all(b.items.map(async (item) => ({ item, migration: await this.store.get(item.migrationId) })));
    return { batch: b, items, counts: batchCounts(items.map((i) => i.migration)) };
  }
}
