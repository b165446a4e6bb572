import { randomBytes } from 'node:crypto';
import { DelayedError, Job, UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import { FerryConfig, findHost } from '../config/load';
import type { HostConfig } from '../config/hosts';
import { AlreadyMovedError, AttemptAbortedError, coerceError, isPermanent, StepError, SupersededError, ValidationError } from '../errors';
import { readFrozenMarker } from '../archive/frozenMarker';
import { checkContainerName, checkHostName } from '../names';
import { abortable, CommandRunner, KILL_GRACE_MS } from '../exec/runner';
import { HostLock, lockContainerOnHost } from '../exec/hostLock';
import { keepJobLock } from './jobLock';
import { Podman } from '../podman/podman';
import type { HostQueues } from '../queues';
import type { RemoteHost, Step, StepContext, StepOutcome } from '../steps';
import type { MigrationStore } from '../store/migrationStore';
import { parseStepJob } from '../../jobs/stepJob';
import { parseTakeoverJob, TAKEOVER_JOB } from '../../jobs/takeoverJob';
import { MigrationRecord, RECORD_VERSION, TERMINAL_STATES } from './model';
import { migrationFiles } from './files';
import { hostForStep, nextStep, onStepExhausted, overallPercent, StepName, stepOrder } from './steps';
import { withState, withStepFinished, withStepStarted } from './transitions';
import { judgeOverdueRestore, OVERDUE_RECHECK_MS, restoreUnderWay } from './overdueRestore';
import { recordMigrationSpan, withStepSpan } from '../tracing';
import { probeProblem } from '../steps/probes';
import { mayUsePostCopy, tearDownPostCopyOf } from '../steps/postCopy';
import { needsAttentionAfterRollback, podmanForRestoreByHand } from './attention';

export interface ProcessorDeps {
  config: FerryConfig;
  self: HostConfig;
  /** This installation's id (engine/installation.ts). */
  installation: string;
  store: MigrationStore;
  queues: HostQueues;
  /** Runs commands on this host; every attempt gets its own abortable view of it. */
  localRunner: CommandRunner;
  /** The SSH runner of another host, shared by all attempts (each wraps it abortably). */
  remoteRunner(host: string): CommandRunner;
  steps: Readonly<Record<StepName, Step>>;
  log: Logger;
  /** Told of every migration that ends here (batches refill their window from it). */
  onTerminal?(rec: MigrationRecord): Promise<void>;
}

/** An attempt running in this process, so a newer one of the same migration can stop it first. */
interface LiveAttempt {
  controller: AbortController;
  settled: Promise<unknown>;
}

/**
 * Runs one step job. BullMQ delivers a job at least once: a stalled job (worker paused past
 * its lock, Redis failover) runs again while the first run may still go on. So every
 * attempt is fenced: it writes a fresh token into the record when it starts, and every later
 * change it makes to the record, and every check before an irreversible act, requires that
 * token to be still the current one. An attempt that loses its job lock, runs out of time
 * or is taken over is aborted (its podman, CRIU and SSH commands are killed) and its result
 * discarded. Every path first reads the record, so a job that arrives after its step is done
 * only makes sure the chain goes on.
 */
export function createStepProcessor(deps: ProcessorDeps) {
  const { store, queues, config, self } = deps;
  const live = new Map<string, LiveAttempt>();

  /**
   * Ends the migration. With `still`, only if it holds in the same atomic update and the
   * migration has not ended (false: nothing was done). Without, an already ended one is ended
   * again: its locks and event, which a crash may have kept from being written.
   */
  async function finish(rec: MigrationRecord, state: MigrationRecord['state'], error: string | undefined, token?: string, still?: (r: MigrationRecord) => boolean): Promise<boolean> {
    const now = Date.now();
    let refused = false;
    const apply = (r: MigrationRecord): MigrationRecord | null => {
      refused = false;
      // Ended meanwhile: a guarded ending (a shortcut) did not happen; an unguarded one ends it again.
      if (TERMINAL_STATES.has(r.state)) {
        refused = !!still;
        return null;
      }
      if (still && !still(r)) {
        refused = true;
        return null;
      }
      return withState(r, state, now, error);
    };
    const done = token ? await store.fencedUpdate(rec.id, token, apply) : await store.update(rec.id, apply);
    if (refused) return false;
    await store.ended(done, state, now, error);
    recordMigrationSpan(done);
    try {
      await deps.onTerminal?.(done);
    } catch (e: unknown) {
      // The migration itself is settled; a batch left behind is repaired by reconcile.
      deps.log.error({ migrationId: rec.id, err: coerceError(e).message }, 'after-end hook failed');
    }
    return true;
  }

  async function advance(rec: MigrationRecord, to: StepName): Promise<void> {
    await queues.enqueue(hostForStep(rec, to), rec.id, to);
  }

  /**
   * The container runs on the destination already (same podman ID) while a rewound record
   * was about to freeze it again: neither "failed" nor a rollback (which would take the
   * running copy, and what it did since, away) is true. The move happened, so the migration
   * goes on where it stands: verify there, cut over, and clean up the source's stopped copy.
   * A cancel is too late by then, as it is once restore has started.
   */
  async function goOnAtDestination(rec: MigrationRecord, err: AlreadyMovedError, token: string): Promise<void> {
    const now = Date.now();
    const r = await store.fencedUpdate(rec.id, token, (x) => {
      if (TERMINAL_STATES.has(x.state)) return null;
      x.state = 'running';
      x.step = 'verify';
      x.restoreStartedAt ??= now;
      // Should verify fail, rollback must know this migration froze the source's copy, or it
      // would take it for someone else's and leave the container running nowhere. The marker
      // says so too until cleanup or rollback removes it; the record may be all that is left.
      x.frozenAt ??= err.frozenAt;
      x.source ??= { id: err.containerId, image: '', imageId: '', ports: [] };
      x.warnings = [...x.warnings, err.message];
      return x;
    });
    await store.event({ migrationId: rec.id, type: 'state', at: now, state: r.state, message: err.message });
    return advance(r, 'verify');
  }

  /** The step failed for good: fail, roll back, or hand over to a person. Only the current attempt may decide it. */
  async function exhausted(rec: MigrationRecord, step: StepName, err: Error, token: string): Promise<void> {
    const what = onStepExhausted(step);
    const message = `${step} failed on host ${self.name}: ${err.message}`;
    if (err instanceof AlreadyMovedError) return goOnAtDestination(rec, err, token);
    if (what === 'fail') {
      await finish(rec, 'failed', message, token);
      return;
    }
    if (what === 'rollback') {
      const r = await store.fencedUpdate(rec.id, token, (x) => {
        if (x.state === 'rolling-back') return null;
        x.state = 'rolling-back';
        x.failure = { step, error: message };
        x.step = 'rollback';
        return x;
      });
      await store.event({ migrationId: rec.id, type: 'state', at: Date.now(), state: 'rolling-back', message });
      return advance(r, 'rollback');
    }
    if (step === 'rollback') {
      const text = await needsAttentionAfterRollback(rec, err, { config, runnerFor: (host) => deps.remoteRunner(host), localRunner: deps.localRunner, self: self.name });
      await finish(rec, 'needs-attention', text, token);
      return;
    }
    await finish(rec, 'needs-attention', message, token);
  }

  function recordProblem(rec: MigrationRecord): string | null {
    try {
      if (rec.v !== undefined && rec.v > RECORD_VERSION) {
        throw new ValidationError(`the migration record was written by a newer Ferry (record version ${rec.v}; this worker understands up to ${RECORD_VERSION}): upgrade this worker`);
      }
      checkContainerName(rec.container);
      for (const h of [rec.from, rec.to]) {
        if (!findHost(config, checkHostName(h))) throw new ValidationError(`host "${h}" is not in this worker's inventory (all hosts must share one config)`);
      }
      const probe = probeProblem(rec.probe);
      if (probe) throw new ValidationError(probe);
      return null;
    } catch (e: unknown) {
      return coerceError(e).message;
    }
  }

  /** How long an attempt waits for another one holding the container on a host. */
  function hostLockWaitMs(step: StepName): number {
    return Math.min(60_000, config.timeouts.step[step]);
  }

  /**
   * Whether this host froze the container for this migration, whatever the record says: a
   * record rewound by a Redis crash can lose frozenAt, but not the marker on this disk.
   */
  async function frozenHere(rec: MigrationRecord): Promise<boolean> {
    if (rec.from !== self.name) return false;
    try {
      return (await readFrozenMarker(migrationFiles(rec, config).source.dir, rec.id)) !== null;
    } catch {
      return false;
    }
  }

  /**
   * A cancel before the freeze: a checkpoint attempt the record forgot (a Redis crash rewinds
   * history) may have set up post-copy (a tunnel, a raised pipe limit, files). Best effort: the
   * container was not touched, and what is left is named in the log.
   */
  async function tearDownUnusedPostCopy(rec: MigrationRecord, log: Logger): Promise<void> {
    const destHost = findHost(config, rec.to);
    if (!mayUsePostCopy(rec) || !destHost) return;
    try {
      const left = await tearDownPostCopyOf({ id: rec.id, source: deps.localRunner, dest: deps.remoteRunner(rec.to), destHost });
      if (left.length) log.warn({ left }, 'post-copy files left behind by the cancelled migration');
    } catch (e: unknown) {
      log.warn({ err: coerceError(e).message }, "could not tear down the cancelled migration's post-copy set-up");
    }
  }

  /** What the attempt's step gets: every command it runs stops when the attempt is aborted. */
  function contextFor(rec: MigrationRecord, step: StepName, token: string, signal: AbortSignal, job: Job<unknown>, log: Logger, unfinished: Set<Promise<unknown>>): StepContext {
    const localRunner = abortable(deps.localRunner, signal, unfinished);
    const fence = async (): Promise<void> => {
      if (signal.aborted) throw new AttemptAbortedError(`the ${step} attempt was stopped`, { cause: signal.reason });
      await store.checkFence(rec.id, token);
    };
    return {
      rec,
      step,
      files: migrationFiles(rec, config),
      config,
      self,
      installation: deps.installation,
      local: new Podman(localRunner, self.podman),
      localRunner,
      remote: (name: string): RemoteHost => {
        const host = findHost(config, name);
        if (!host) throw new ValidationError(`unknown host "${name}"`);
        const runner = abortable(deps.remoteRunner(name), signal, unfinished);
        return { host, runner, podman: new Podman(runner, host.podman) };
      },
      signal,
      fence,
      lockOn: async (host) => {
        const h = findHost(config, host);
        if (!h) throw new ValidationError(`unknown host "${host}"`);
        return lockContainerOnHost(deps.remoteRunner(host), host, rec.container, hostLockWaitMs(step), signal);
      },
      mark: async (patch) => {
        if (signal.aborted) throw new AttemptAbortedError(`the ${step} attempt was stopped`, { cause: signal.reason });
        const first = patch.frozenAt !== undefined && !rec.frozenAt;
        const marked = await store.fencedUpdate(rec.id, token, (r) => {
          // Checked in the same atomic update that records the freeze: a cancel that came
          // in while the checkpoint got ready must not be followed by a freeze.
          if (patch.frozenAt && r.cancelRequested && !r.frozenAt) throw new StepError('cancelled before the container was frozen', { code: 'CANCELLED', permanent: true });
          return Object.assign(r, patch);
        });
        // The frozen container's deadline, counted from the freeze (not from the step's start:
        // volumes are copied before it) and kept on this (the source) host's own queue, so it
        // fires even if every other host is gone. A crash before it is queued leaves the
        // record's frozenAt, from which the repair loop queues it.
        if (first && step === 'checkpoint') await queues.takeOver(self.name, rec.id, 'deadline', config.timeouts.frozenMs);
        return marked;
      },
      claim: async (pairs) => {
        await fence();
        const got = await store.lock(rec.id, pairs);
        if (!got.ok) {
          throw new StepError(`container "${rec.container}" is already part of migration ${got.heldBy} (on host ${got.host}); wait for it or cancel it first`, { code: 'CONFLICT', permanent: true });
        }
        await store.fencedUpdate(rec.id, token, (r) => {
          const have = r.locks ?? [];
          r.locks = [...have, ...pairs.filter((p) => !have.some((h) => h.host === p.host && h.container === p.container))];
          return r;
        });
      },
      redisRunId: () => store.serverRunId(rec.id),
      progress: async (p) => {
        await store.event({ migrationId: rec.id, type: 'progress', at: Date.now(), step, host: self.name, percent: overallPercent(step, p.percent), bytes: p.bytes, totalBytes: p.totalBytes, message: p.message });
        await job.updateProgress({ step, percent: p.percent, bytes: p.bytes });
      },
      log,
    };
  }

  /**
   * Runs the step under its time limit. When the limit passes (or the attempt is aborted
   * for another reason) the step's commands are killed and this waits for the step to
   * settle, so no retry starts while this attempt still acts.
   */
  async function runAttempt(step: StepName, run: () => Promise<StepOutcome>, controller: AbortController): Promise<StepOutcome> {
    const ms = config.timeouts.step[step];
    let timer: NodeJS.Timeout | undefined;
    const running = run();
    running.catch(() => undefined);
    const stopped = new Promise<never>((_, reject) => {
      const onAbort = (): void => reject(coerceError(controller.signal.reason));
      if (controller.signal.aborted) onAbort();
      else controller.signal.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(() => controller.abort(new StepError(`step ${step} took longer than its ${ms} ms time limit; its commands were stopped`, { code: 'STEP_TIMEOUT' })), ms);
    });
    stopped.catch(() => undefined);
    try {
      return await Promise.race([running, stopped]);
    } catch (e: unknown) {
      if (controller.signal.aborted) {
        // Killed commands make the step fail soon after; wait for that (bounded), so that
        // the attempt is really over before BullMQ may start the next one.
        await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, 5 * KILL_GRACE_MS))]);
        throw coerceError(controller.signal.reason);
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The source worker takes a frozen container back: the deadline passed before restore
   * started, or the migration was cancelled after the freeze. It supersedes whatever attempt
   * is current (a restore waiting on a dead destination's queue can then never run) in one
   * atomic update that first checks restore has not started, and hands over to rollback,
   * which itself asks the destination before bringing the source back.
   */
  async function takeOver(job: Job<unknown>, lockToken: string | undefined): Promise<unknown> {
    let data;
    try {
      data = parseTakeoverJob(job.data);
    } catch (e: unknown) {
      throw new UnrecoverableError(coerceError(e).message);
    }
    const { migrationId, kind } = data;
    const log = deps.log.child({ migrationId, takeOver: kind });
    const found = await store.get(migrationId);
    if (!found || TERMINAL_STATES.has(found.state)) return { skipped: 'migration ended' };
    if (found.from !== self.name) throw new UnrecoverableError(`take-over of ${migrationId} belongs to host ${found.from}, not ${self.name}`);
    if (!found.frozenAt) return { skipped: 'container not frozen' };
    const reason = kind === 'deadline' ? `the container stayed frozen for ${config.timeouts.frozenMs} ms without restore starting on ${found.to}; the source takes it back` : 'cancelled after the container was frozen';
    const { took, rec } = await seizeForRollback(migrationId, reason, (r) => !r.restoreStartedAt && stepOrder(r.step) <= stepOrder('restore'));
    if (!took) {
      if (kind === 'deadline' && restoreUnderWay(rec)) return overdueRestore(rec, job, lockToken, log);
      return { skipped: `restore started or migration moved on (${rec.state}, ${rec.step})` };
    }
    await startRollback(rec, reason, log);
    return { tookOver: kind };
  }

  /**
   * One atomic update that makes the source's rollback the migration's current attempt, if the
   * migration is live, not already rolling back, and `may` holds. Superseded attempts are fenced out.
   */
  async function seizeForRollback(id: string, reason: string, may: (r: MigrationRecord) => boolean): Promise<{ took: boolean; rec: MigrationRecord }> {
    const token = randomBytes(12).toString('hex');
    let took = false;
    const rec = await store.update(id, (r) => {
      // Run again when the record changed meanwhile: only the last run counts.
      took = false;
      if (TERMINAL_STATES.has(r.state) || r.state === 'rolling-back' || !may(r)) return null;
      r.attempt = { step: 'rollback', token, host: self.name, n: 0, startedAt: Date.now() };
      r.state = 'rolling-back';
      r.failure = { step: r.step, error: reason };
      r.step = 'rollback';
      took = true;
      return r;
    });
    return { took, rec };
  }

  /** After seizeForRollback: said, an attempt of this migration still running here stopped, rollback queued. */
  async function startRollback(rec: MigrationRecord, reason: string, log: Logger): Promise<void> {
    log.warn({ reason }, 'taking the frozen container back');
    await store.event({ migrationId: rec.id, type: 'state', at: Date.now(), state: 'rolling-back', message: reason });
    const running = live.get(rec.id);
    if (running) {
      running.controller.abort(new SupersededError(reason));
      await Promise.race([running.settled, new Promise((r) => setTimeout(r, 5 * KILL_GRACE_MS))]);
    }
    await advance(rec, 'rollback');
  }

  /** The same deadline job, later: its id stays the deadline's, so the repair pass sees it alive. */
  async function redelay(job: Job<unknown>, lockToken: string | undefined, at: number, why: string): Promise<{ skipped: string }> {
    if (!lockToken) return { skipped: `${why}; no job lock to schedule the next check with` };
    await job.moveToDelayed(at, lockToken);
    throw new DelayedError();
  }

  /**
   * The deadline came while restore had started on the destination (engine/overdueRestore.ts):
   * asked again until the migration moves on, taken back only once no restore can run there.
   */
  async function overdueRestore(rec: MigrationRecord, job: Job<unknown>, lockToken: string | undefined, log: Logger): Promise<unknown> {
    const verdict = await judgeOverdueRestore(rec, deps);
    // Still where it was judged: the migration may have moved on while the destination was asked.
    const unchanged = (r: MigrationRecord): boolean => r.step === rec.step && r.restoreStartedAt === rec.restoreStartedAt;
    if (verdict.kind === 'unreachable') {
      const text = `restore started on ${rec.to} but it cannot be reached ${config.timeouts.frozenMs} ms after the freeze (${verdict.why}). The container may run there: do NOT restore it on ${rec.from} until ${rec.to} is checked. If it runs on ${rec.to}, remove the stopped copy on ${rec.from} (\`podman rm ${rec.container}\`); if it does not, \`${podmanForRestoreByHand(config)} container restore ${rec.container}\` on ${rec.from} brings it back`;
      if (await finish(rec, 'needs-attention', text, undefined, unchanged)) return { needsAttention: true };
      return redelay(job, lockToken, Date.now() + OVERDUE_RECHECK_MS, `the migration moved on while ${rec.to} was asked`);
    }
    if (verdict.kind === 'runs-there' || verdict.kind === 'wait') {
      if (verdict.kind === 'wait') log.info({ why: verdict.why }, 'frozen container past its deadline, restore started on the destination: asking again later');
      return redelay(job, lockToken, verdict.recheckAt, `restore started on ${rec.to}`);
    }
    const reason = `the container stayed frozen past its deadline and past the restore's time limit, and host ${rec.to} neither runs it nor works on it; the source takes it back`;
    let seized;
    try {
      seized = await seizeForRollback(rec.id, reason, (r) => restoreUnderWay(r) && r.restoreStartedAt === verdict.restoreStartedAt);
    } finally {
      // The record says rollback now: a restore attempt that gets the lock next is fenced out.
      await verdict.lock.release();
    }
    const now = seized.rec;
    if (!seized.took) {
      // A newer restore attempt marked its start meanwhile: judged again later, not dropped.
      if (restoreUnderWay(now)) return redelay(job, lockToken, Date.now() + OVERDUE_RECHECK_MS, 'a restore started again meanwhile');
      return { skipped: `the migration moved on meanwhile (${now.state}, ${now.step})` };
    }
    await startRollback(now, reason, log);
    return { tookOver: 'deadline', afterRestoreStarted: true };
  }

  return async function processStep(job: Job<unknown>, lockToken?: string, jobSignal?: AbortSignal): Promise<unknown> {
    if (job.name === TAKEOVER_JOB) return takeOver(job, lockToken);
    let data;
    try {
      data = parseStepJob(job.data);
    } catch (e: unknown) {
      deps.log.warn({ jobId: job.id, err: coerceError(e).message }, 'rejected malformed job');
      throw new UnrecoverableError(coerceError(e).message);
    }
    const { migrationId, step } = data;
    const log = deps.log.child({ migrationId, step });
    const found = await store.get(migrationId);
    if (!found) throw new UnrecoverableError(`unknown migration ${migrationId}`);
    if (TERMINAL_STATES.has(found.state)) return { skipped: `migration already ${found.state}` };
    // Anyone who can write to Redis can write a record, and a worker whose inventory is out
    // of date may not know a host: either way the step must not run. It fails like any
    // step would, so a migration past its checkpoint rolls back instead of being dropped.
    const rejected = recordProblem(found);
    if (hostForStep(found, step) !== self.name) throw new UnrecoverableError(`step ${step} of ${migrationId} belongs to host ${hostForStep(found, step)}, not ${self.name}`);
    if (found.step !== step) {
      if (stepOrder(found.step) > stepOrder(step)) {
        // Done before a crash, which may have come before the next step was queued.
        await advance(found, found.step);
        return { skipped: `already past ${step}` };
      }
      throw new UnrecoverableError(`step ${step} of ${migrationId} arrived before ${found.step} finished`);
    }
    // A delivery whose lock already lapsed (this worker was paused or cut off from Redis) has a
    // successor or will have one: it must not take the record from it, nor end the migration.
    if (lockToken && (await job.extendLock(lockToken, deps.config.worker.lockDurationMs)) !== 1) return { skipped: 'this delivery no longer holds its job lock' };

    // A checkpoint attempt that ran may have copied volumes and folders to the destination:
    // then the cancel goes through the checkpoint (which refuses to freeze) and rollback.
    // Checked again in the update that ends it: another delivery may have started meanwhile.
    const untouched = (r: MigrationRecord): boolean => !!r.cancelRequested && r.step === step && !r.frozenAt && (step === 'preflight' || (step === 'checkpoint' && !r.history.some((h) => h.step === 'checkpoint')));
    if (untouched(found) && !(await frozenHere(found)) && (await finish(found, 'cancelled', 'cancelled before the container was touched', undefined, untouched))) {
      // Only once the cancel has won: before, a checkpoint attempt could be setting it up.
      if (step === 'checkpoint') await tearDownUnusedPostCopy(found, log);
      return { cancelled: true };
    }

    // Take over: from here on the record answers only to this attempt.
    const attempt = job.attemptsMade + 1;
    const token = randomBytes(12).toString('hex');
    const started = Date.now();
    let rec: MigrationRecord;
    try {
      rec = await store.update(migrationId, (r) => {
        if (TERMINAL_STATES.has(r.state) || r.step !== step) throw new SupersededError(`migration ${migrationId} moved on (${r.state}, step ${r.step}) before this ${step} attempt started`);
        r.attempt = { step, token, host: self.name, n: attempt, startedAt: started };
        return withStepStarted(r, step, self.name, attempt, started);
      });
    } catch (e: unknown) {
      if (e instanceof SupersededError) return { skipped: e.message };
      throw e;
    }
    const controller = new AbortController();
    const lockLost = (why: string): void => controller.abort(new AttemptAbortedError(`the ${step} attempt lost its job lock (${why}); it is stopped so a new attempt can take over`, { code: 'LOCK_LOST' }));
    if (jobSignal) {
      const onJobAbort = (): void => lockLost(String(jobSignal.reason ?? 'cancelled'));
      if (jobSignal.aborted) onJobAbort();
      else jobSignal.addEventListener('abort', onJobAbort, { once: true });
    }
    // Stopped in the finally below; nothing between here and there throws.
    const lockKeeper = lockToken ? keepJobLock(job, lockToken, deps.config.worker.lockDurationMs, { lost: lockLost, error: (e) => log.warn({ attempt, err: e.message }, 'could not renew the job lock; trying again') }) : undefined;
    // An older attempt of this migration still running here (a stalled job delivered again)
    // is stopped and waited for before this one touches anything.
    const previous = live.get(migrationId);
    if (previous) {
      previous.controller.abort(new SupersededError(`a newer ${step} attempt (${attempt}) took over`));
      await Promise.race([previous.settled, new Promise((r) => setTimeout(r, 5 * KILL_GRACE_MS))]);
    }
    let settle: (v?: unknown) => void = () => undefined;
    const mine: LiveAttempt = { controller, settled: new Promise((r) => (settle = r)) };
    live.set(migrationId, mine);

    let hostLock: HostLock | undefined;
    // Commands this attempt started that its stop does not cut short (an in-place restore).
    const unfinished = new Set<Promise<unknown>>();
    try {
      await store.event({ migrationId, type: 'step-started', at: started, step, host: self.name, attempt, percent: overallPercent(step, 0) });
      log.info({ attempt }, 'step started');
      let outcome;
      try {
        const span = { migrationId, container: rec.container, from: rec.from, to: rec.to, step, host: self.name, attempt };
        if (rejected) throw new StepError(`host ${self.name} refuses this step: ${rejected}`, { code: 'RECORD_REJECTED', permanent: true });
        const ctx = contextFor(rec, step, token, controller.signal, job, log, unfinished);
        const guarded = async (): Promise<StepOutcome> => {
          // Across processes too, one attempt at a time touches this container here.
          hostLock = await lockContainerOnHost(deps.localRunner, self.name, rec.container, hostLockWaitMs(step), controller.signal);
          await ctx.fence();
          return deps.steps[step](ctx);
        };
        outcome = await withStepSpan(span, () => runAttempt(step, guarded, controller));
      } catch (e: unknown) {
        const err = coerceError(e);
        const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
        if (err instanceof SupersededError || reason instanceof SupersededError || (reason instanceof AttemptAbortedError && reason.code === 'LOCK_LOST')) {
          // Someone else owns the record now, or will: the job went back to the queue when this
          // delivery lost its lock, so its next delivery decides. Nothing of this attempt may be
          // written, least of all a failure that could use up the step's last try.
          log.warn({ attempt, err: err.message }, 'attempt superseded; its work is discarded');
          throw new UnrecoverableError(err.message);
        }
        const final = isPermanent(err) || attempt >= (job.opts.attempts ?? 1);
        const now = Date.now();
        try {
          await store.fencedUpdate(migrationId, token, (r) => withStepFinished(r, step, now, { ok: false, error: err.message }));
        } catch (fe: unknown) {
          log.warn({ attempt, err: err.message, fence: coerceError(fe).message }, 'failed attempt superseded; not recorded');
          throw new UnrecoverableError(coerceError(fe).message);
        }
        await store.event({ migrationId, type: 'step-failed', at: now, step, host: self.name, attempt, message: err.message, durationMs: now - started });
        log.warn({ attempt, final, err: err.message }, 'step failed');
        if (final) {
          await exhausted((await store.get(migrationId)) ?? rec, step, err, token);
          throw new UnrecoverableError(err.message);
        }
        throw err;
      }

      const now = Date.now();
      const next = step === 'rollback' ? undefined : nextStep(step);
      try {
        rec = await store.fencedUpdate(migrationId, token, (r) => {
          withStepFinished(r, step, now, { ok: true, result: outcome.result });
          Object.assign(r, outcome.patch ?? {});
          if (next) r.step = next;
          return r;
        });
      } catch (e: unknown) {
        if (!(e instanceof SupersededError)) throw e;
        log.warn({ attempt, err: e.message }, 'attempt finished after being superseded; its result is discarded');
        throw new UnrecoverableError(e.message);
      }
      await store.event({ migrationId, type: 'step-done', at: now, step, host: self.name, attempt, durationMs: now - started, percent: overallPercent(next ?? step, next ? 0 : 100) });
      log.info({ ms: now - started }, 'step done');
      if (next) await advance(rec, next);
      else if (step === 'rollback') await finish(rec, rec.cancelRequested ? 'cancelled' : 'failed-rolled-back', rec.failure?.error ?? 'rolled back', token);
      else await finish(rec, 'succeeded', undefined, token);
      return outcome.result;
    } finally {
      lockKeeper?.stop();
      // The container stays locked on this host until they end (each has its own time limit):
      // the next attempt must not find it half restored.
      await Promise.allSettled([...unfinished]);
      await hostLock?.release();
      if (live.get(migrationId) === mine) live.delete(migrationId);
      settle();
    }
  };
}
