import { Job, UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import { FerryConfig, findHost } from '../config/load';
import type { HostConfig } from '../config/hosts';
import { coerceError, isPermanent, StepError, ValidationError } from '../errors';
import { checkContainerName, checkHostName } from '../names';
import type { CommandRunner } from '../exec/runner';
import type { Podman } from '../podman/podman';
import type { HostQueues } from '../queues';
import type { RemoteHost, Step, StepContext } from '../steps';
import type { MigrationStore } from '../store/migrationStore';
import { parseStepJob } from '../../jobs/stepJob';
import { MigrationRecord, TERMINAL_STATES } from './model';
import { migrationFiles } from './files';
import { hostForStep, nextStep, onStepExhausted, overallPercent, StepName, stepOrder } from './steps';
import { withState, withStepFinished, withStepStarted } from './transitions';
import { recordMigrationSpan, withStepSpan } from '../tracing';

export interface ProcessorDeps {
  config: FerryConfig;
  self: HostConfig;
  store: MigrationStore;
  queues: HostQueues;
  local: Podman;
  localRunner: CommandRunner;
  remote(host: string): RemoteHost;
  steps: Readonly<Record<StepName, Step>>;
  log: Logger;
  /** Told of every migration that ends here (batches refill their window from it). */
  onTerminal?(rec: MigrationRecord): Promise<void>;
}

/**
 * Runs one step job. Every path first reads the migration record, so a job that arrives
 * twice (re-enqueued after a crash, retried after a stall) finds the work already done
 * and only makes sure the chain goes on.
 */
export function createStepProcessor(deps: ProcessorDeps) {
  const { store, queues, config, self } = deps;

  async function finish(rec: MigrationRecord, state: MigrationRecord['state'], error?: string): Promise<void> {
    const now = Date.now();
    const done = await store.update(rec.id, (r) => (TERMINAL_STATES.has(r.state) ? null : withState(r, state, now, error)));
    await store.ended(done, state, now, error);
    recordMigrationSpan(done);
    try {
      await deps.onTerminal?.(done);
    } catch (e: unknown) {
      // The migration itself is settled; a batch left behind is repaired by reconcile.
      deps.log.error({ migrationId: rec.id, err: coerceError(e).message }, 'after-end hook failed');
    }
  }

  async function advance(rec: MigrationRecord, to: StepName): Promise<void> {
    await queues.enqueue(hostForStep(rec, to), rec.id, to);
  }

  /** The step failed for good: fail, roll back, or hand over to a person. */
  async function exhausted(rec: MigrationRecord, step: StepName, err: Error): Promise<void> {
    const what = onStepExhausted(step);
    const message = `${step} failed on host ${self.name}: ${err.message}`;
    if (what === 'fail') return finish(rec, 'failed', message);
    if (what === 'rollback') {
      const r = await store.update(rec.id, (x) => {
        if (x.state === 'rolling-back' || TERMINAL_STATES.has(x.state)) return null;
        x.state = 'rolling-back';
        x.failure = { step, error: message };
        x.step = 'rollback';
        return x;
      });
      await store.event({ migrationId: rec.id, type: 'state', at: Date.now(), state: 'rolling-back', message });
      return advance(r, 'rollback');
    }
    if (step === 'rollback') {
      let archive: string | undefined;
      try {
        archive = rec.archive ? migrationFiles(rec, config).source.archive : undefined;
      } catch {
        // A record this worker refuses (unknown host) names no file it may point people to.
      }
      const todo = archive
        ? rec.archive?.encryption
          ? `its encrypted checkpoint archive is kept on ${rec.from} at ${archive}: restore it there with \`ferry archive decrypt ${archive} ${archive.replace(/\.enc$/, '')}\` then \`podman container restore --import ${archive.replace(/\.enc$/, '')}\`, and delete the plain copy`
          : `its checkpoint archive is kept on ${rec.from} at ${archive}: restore it there with \`podman container restore --import ${archive}\``
        : `no complete archive exists; on ${rec.from}, \`podman container restore ${rec.container}\` brings it back if the checkpoint finished (inspect its state first)`;
      return finish(rec, 'needs-attention', `${rec.failure?.error ?? 'migration failed'}; then rollback failed: ${err.message}. The container may not be running on ${rec.from} or ${rec.to}; ${todo}`);
    }
    return finish(rec, 'needs-attention', message);
  }

  function recordProblem(rec: MigrationRecord): string | null {
    try {
      checkContainerName(rec.container);
      for (const h of [rec.from, rec.to]) {
        if (!findHost(config, checkHostName(h))) throw new ValidationError(`host "${h}" is not in this worker's inventory (all hosts must share one config)`);
      }
      return null;
    } catch (e: unknown) {
      return coerceError(e).message;
    }
  }

  return async function processStep(job: Job<unknown>): Promise<unknown> {
    let data;
    try {
      data = parseStepJob(job.data);
    } catch (e: unknown) {
      deps.log.warn({ jobId: job.id, err: coerceError(e).message }, 'rejected malformed job');
      throw new UnrecoverableError(coerceError(e).message);
    }
    const { migrationId, step } = data;
    const log = deps.log.child({ migrationId, step });
    let rec = await store.get(migrationId);
    if (!rec) throw new UnrecoverableError(`unknown migration ${migrationId}`);
    if (TERMINAL_STATES.has(rec.state)) return { skipped: `migration already ${rec.state}` };
    // Anyone who can write to Redis can write a record, and a worker whose inventory is out
    // of date may not know a host: either way the step must not run. It fails like any
    // step would, so a migration past its checkpoint rolls back instead of being dropped.
    const rejected = recordProblem(rec);
    if (hostForStep(rec, step) !== self.name) throw new UnrecoverableError(`step ${step} of ${migrationId} belongs to host ${hostForStep(rec, step)}, not ${self.name}`);
    if (rec.step !== step) {
      if (stepOrder(rec.step) > stepOrder(step)) {
        // Done before a crash, which may have come before the next step was queued.
        await advance(rec, rec.step);
        return { skipped: `already past ${step}` };
      }
      throw new UnrecoverableError(`step ${step} of ${migrationId} arrived before ${rec.step} finished`);
    }
    if (rec.cancelRequested && (step === 'preflight' || (step === 'checkpoint' && !rec.frozenAt))) {
      await finish(rec, 'cancelled', 'cancelled before the container was touched');
      return { cancelled: true };
    }

    const attempt = job.attemptsMade + 1;
    const started = Date.now();
    rec = await store.update(migrationId, (r) => withStepStarted(r, step, self.name, attempt, started));
    await store.event({ migrationId, type: 'step-started', at: started, step, host: self.name, attempt, percent: overallPercent(step, 0) });
    log.info({ attempt }, 'step started');

    let outcome;
    try {
      // A span per step attempt (a no-op unless an OpenTelemetry SDK is registered).
      const span = { migrationId, container: rec.container, from: rec.from, to: rec.to, step, host: self.name, attempt };
      if (rejected) throw new StepError(`host ${self.name} refuses this step: ${rejected}`, { code: 'RECORD_REJECTED', permanent: true });
      const ctx: StepContext = {
        rec,
        step,
        files: migrationFiles(rec, config),
        config,
        self,
        local: deps.local,
        localRunner: deps.localRunner,
        remote: deps.remote,
        mark: (patch) => store.update(migrationId, (r) => Object.assign(r, patch)),
        progress: async (p) => {
          await store.event({ migrationId, type: 'progress', at: Date.now(), step, host: self.name, percent: overallPercent(step, p.percent), bytes: p.bytes, totalBytes: p.totalBytes, message: p.message });
          await job.updateProgress({ step, percent: p.percent, bytes: p.bytes });
        },
        log,
      };
      outcome = await withStepSpan(span, () => withTimeout(deps.steps[step](ctx), config.timeouts.step[step], step));
    } catch (e: unknown) {
      const err = coerceError(e);
      const final = isPermanent(err) || attempt >= (job.opts.attempts ?? 1);
      const now = Date.now();
      await store.update(migrationId, (r) => withStepFinished(r, step, now, { ok: false, error: err.message }));
      await store.event({ migrationId, type: 'step-failed', at: now, step, host: self.name, attempt, message: err.message, durationMs: now - started });
      log.warn({ attempt, final, err: err.message }, 'step failed');
      if (final) {
        await exhausted(await store.get(migrationId) ?? rec, step, err);
        throw new UnrecoverableError(err.message);
      }
      throw err;
    }

    const now = Date.now();
    const next = step === 'rollback' ? undefined : nextStep(step);
    rec = await store.update(migrationId, (r) => {
      withStepFinished(r, step, now, { ok: true, result: outcome.result });
      Object.assign(r, outcome.patch ?? {});
      if (next) r.step = next;
      return r;
    });
    await store.event({ migrationId, type: 'step-done', at: now, step, host: self.name, attempt, durationMs: now - started, percent: overallPercent(next ?? step, next ? 0 : 100) });
    log.info({ ms: now - started }, 'step done');
    if (next) await advance(rec, next);
    else if (step === 'rollback') await finish(rec, rec.cancelRequested ? 'cancelled' : 'failed-rolled-back', rec.failure?.error ?? 'rolled back');
    else await finish(rec, 'succeeded');
    return outcome.result;
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, step: StepName): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StepError(`step ${step} took longer than its ${ms} ms time limit`, { code: 'STEP_TIMEOUT' })), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
