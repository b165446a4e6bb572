import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MigrationRecord } from '../engine/model';
import { ACTIVE_STATES, TERMINAL_STATES } from '../engine/states';
import { STEP_NAMES } from '../engine/steps';
import { QUEUE_STATES } from './fleetView';
import type { Monitor } from './monitor';

const STEP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
const DOWNTIME_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

/**
 * Prometheus metrics derived from Redis at scrape time: the records (for outcomes, step
 * durations, downtime, bytes) and BullMQ (queue depth, workers). Whichever process serves
 * them, they say the same thing, since no process counts on its own. Counters are rebuilt
 * from the records on every scrape; they only go down when Redis expires records (30 days).
 * Each instance has its own Registry: nothing is registered globally at import time.
 */
export class FerryMetrics {
  readonly registry = new Registry();
  private readonly migrations: Counter<'outcome'>;
  private readonly active: Gauge<'state'>;
  private readonly stepSeconds: Histogram<'step' | 'outcome'>;
  private readonly downtime: Histogram;
  private readonly bytes: Counter;
  private readonly queueJobs: Gauge<'queue' | 'state'>;
  private readonly workers: Gauge<'host'>;
  private readonly scrapeErrors: Counter;
  private refreshing: Promise<void> = Promise.resolve();

  constructor(private readonly monitor: Monitor) {
    const registers = [this.registry];
    this.migrations = new Counter({ name: 'ferry_migrations_total', help: 'Migrations that ended, by outcome (end state)', labelNames: ['outcome'], registers });
    this.active = new Gauge({ name: 'ferry_migrations_active', help: 'Migrations not ended yet, by state', labelNames: ['state'], registers });
    this.stepSeconds = new Histogram({ name: 'ferry_step_duration_seconds', help: 'Time each step attempt took, by step and outcome (ok|failed)', labelNames: ['step', 'outcome'], buckets: STEP_BUCKETS, registers });
    this.downtime = new Histogram({ name: 'ferry_downtime_seconds', help: 'Time a migrated container was unavailable: from freeze to answering again on the destination', buckets: DOWNTIME_BUCKETS, registers });
    this.bytes = new Counter({ name: 'ferry_bytes_transferred_total', help: 'Checkpoint archive bytes sent between hosts', registers });
    this.queueJobs = new Gauge({ name: 'ferry_queue_jobs', help: 'Jobs in each host queue, by BullMQ state', labelNames: ['queue', 'state'], registers });
    this.workers = new Gauge({ name: 'ferry_workers_alive', help: 'Workers connected to each host queue', labelNames: ['host'], registers });
    this.scrapeErrors = new Counter({ name: 'ferry_metrics_refresh_errors_total', help: 'Scrapes where Redis could not be read (the other values are then stale)', registers });
  }

  /** The exposition text; refreshes from Redis first. Scrapes that overlap run one after another. */
  async render(): Promise<{ contentType: string; body: string }> {
    const run = this.refreshing.then(() => this.refresh());
    this.refreshing = run.catch(() => undefined);
    try {
      await run;
    } catch {
      this.scrapeErrors.inc();
    }
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private async refresh(): Promise<void> {
    const ctx = await this.monitor.fleet();
    const queueData = await Promise.all(
      this.monitor.config.hosts.map(async (h) => {
        const q = this.monitor.queues.get(h.name);
        const u = this.monitor.queues.urgent(h.name);
        const [workers, counts, urgent] = await Promise.all([q.getWorkersCount(), q.getJobCounts(...QUEUE_STATES), u.getJobCounts(...QUEUE_STATES)]);
        return {
          host: h.name,
          queues: [
            { queue: q.name, counts },
            { queue: u.name, counts: urgent },
          ],
          workers,
        };
      }),
    );
    // Everything read: now swap the values in at once, so a scrape never sees half of them.
    this.fromRecords(ctx.records);
    this.queueJobs.reset();
    this.workers.reset();
    for (const d of queueData) {
      this.workers.set({ host: d.host }, d.workers);
      for (const q of d.queues) for (const s of QUEUE_STATES) this.queueJobs.set({ queue: q.queue, state: s }, q.counts[s] ?? 0);
    }
  }

  private fromRecords(records: MigrationRecord[]): void {
    this.migrations.reset();
    this.active.reset();
    this.stepSeconds.reset();
    this.downtime.reset();
    this.bytes.reset();
    for (const o of TERMINAL_STATES) this.migrations.inc({ outcome: o }, 0);
    for (const s of ACTIVE_STATES) this.active.set({ state: s }, 0);
    // Every step has its series from the start, so rate() and absent() behave.
    for (const step of STEP_NAMES) for (const outcome of ['ok', 'failed']) this.stepSeconds.zero({ step, outcome });
    let bytes = 0;
    for (const r of records) {
      if (ACTIVE_STATES.has(r.state)) this.active.inc({ state: r.state });
      else this.migrations.inc({ outcome: r.state });
      for (const h of r.history) {
        if (h.finishedAt === undefined || h.ok === undefined) continue;
        this.stepSeconds.observe({ step: h.step, outcome: h.ok ? 'ok' : 'failed' }, (h.finishedAt - h.startedAt) / 1000);
      }
      if (r.frozenAt && r.answeredAt) this.downtime.observe((r.answeredAt - r.frozenAt) / 1000);
      bytes += r.bytesTransferred ?? 0;
    }
    this.bytes.inc(bytes);
  }
}
