import type { Logger } from 'pino';
import type { Queue } from 'bullmq';
import type { HostConfig } from '../config/hosts';
import type { FerryConfig } from '../config/load';
import { findHost } from '../config/load';
import { FrozenMarker, listFrozenMarkers, ownMarker, readFrozenMarker, removeFrozenMarker } from '../archive/frozenMarker';
import { removeFile } from '../archive/localFiles';
import { coerceError, StepError } from '../errors';
import { lockContainerOnHost } from '../exec/hostLock';
import { stopStrayExport } from '../transfer/fifo';
import type { CommandRunner } from '../exec/runner';
import { Podman } from '../podman/podman';
import type { HostQueues } from '../queues';
import type { MigrationStore } from '../store/migrationStore';
import { RECORD_TTL_S } from '../store/migrationStore';
import { recoverFrozen, removeIdleCopy } from '../steps/frozenRecovery';
import { settleLostPostCopy } from '../steps/postCopy';
import { stepJobId } from '../../jobs/stepJob';
import { takeoverJobId } from '../../jobs/takeoverJob';
import { archiveCopies, migrationFiles } from './files';
import { MigrationRecord, RECORD_VERSION, TERMINAL_STATES } from './model';
import { endsOn } from './states';
import { hostForStep, stepOrder } from './steps';

export interface RepairDeps {
  config: FerryConfig;
  self: HostConfig;
  /** This installation's id (engine/installation.ts). */
  installation: string;
  store: MigrationStore;
  queues: HostQueues;
  localRunner: CommandRunner;
  remoteRunner(host: string): CommandRunner;
  log: Logger;
}

/**
 * A frozen marker whose record is missing is taken for a record a crash lost only while it is
 * younger than this: well inside a record's life (RECORD_TTL_S), past which its absence means
 * it expired.
 */
const LOST_RECORD_MAX_AGE_MS = (RECORD_TTL_S * 1000) / 4;
/** How long the repair pass waits for the last pages of a moved post-copy container whose record was lost. */
const LOST_POSTCOPY_WAIT_MS = 15_000;

/** How far back the loop looks for migrations that should be moving. */
const LOOK_BACK_MS = 7 * 24 * 3600_000;
const JOB_STATES_ALIVE = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children', 'paused']);

/**
 * What a worker checks every few seconds, for the migrations whose next move is on its host.
 * The chain of steps is carried by jobs, and a job can vanish while the record still waits
 * for it: removed by hand (Bull Board, a script), or lost with the last second of an AOF in
 * a Redis crash. A migration whose current step has no live job gets it again; a frozen
 * container whose deadline job is gone gets it again. And a container this host froze for a
 * migration whose record is gone, or ended without it, is brought back (archive/frozenMarker.ts).
 * Every re-queued job has its deterministic id: a job that still exists is never doubled.
 */
export function createRepairer(deps: RepairDeps) {
  const { config, self, store, queues, log } = deps;

  async function repairJobs(live: MigrationRecord[]): Promise<number> {
    let fixed = 0;
    for (const rec of live) {
      if (hostForStep(rec, rec.step) === self.name) {
        const job = await queues.forStep(self.name, rec.step).getJob(stepJobId(rec.id, rec.step));
        const state = job ? await job.getState() : 'missing';
        if (!JOB_STATES_ALIVE.has(state)) {
          // The step's job ended (or went) while the record still waits for it.
          if (job) await job.remove().catch(() => undefined);
          await queues.enqueue(self.name, rec.id, rec.step);
          log.warn({ migrationId: rec.id, step: rec.step, jobState: state }, 'step job was missing; queued it again');
          fixed++;
        }
      }
      // Up to verify: a deadline that finds restore started asks the destination again until the
      // migration moves on (engine/overdueRestore.ts), so it is kept alive that long too.
      if (rec.from === self.name && rec.frozenAt && stepOrder(rec.step) <= stepOrder('verify')) {
        const deadline = await queues.urgent(self.name).getJob(takeoverJobId(rec.id, 'deadline'));
        // Gone, or ended without taking over (it ran before the freeze a rewound record forgot,
        // or failed): the frozen container would have no deadline left.
        const ended = deadline ? ['completed', 'failed'].includes(await deadline.getState()) : true;
        if (ended) {
          if (deadline) await deadline.remove().catch(() => undefined);
          await queues.takeOver(self.name, rec.id, 'deadline', Math.max(0, rec.frozenAt + config.timeouts.frozenMs - Date.now()));
          log.warn({ migrationId: rec.id }, 'frozen container had no deadline job; scheduled it again');
          fixed++;
        }
      }
    }
    return fixed;
  }

  // Markers left alone (another installation's, or too old to judge), told once each.
  const leftAlone = new Set<string>();
  const leaveAlone = (marker: FrozenMarker, why: string): void => {
    if (leftAlone.has(marker.migrationId)) return;
    leftAlone.add(marker.migrationId);
    log.warn({ migrationId: marker.migrationId, container: marker.container, installation: marker.installation, frozenAt: new Date(marker.at).toISOString() }, why);
  };

  async function repairFrozen(): Promise<number> {
    let fixed = 0;
    for (const marker of await listFrozenMarkers(self.workDir)) {
      try {
        fixed += await repairMarker(marker);
      } catch (e: unknown) {
        // One marker that cannot be handled now (a busy lock, an unreachable host) must not
        // starve the others: the next pass tries it again.
        log.warn({ migrationId: marker.migrationId, container: marker.container, err: coerceError(e).message }, 'could not look after a frozen container this pass');
      }
    }
    return fixed;
  }

  async function repairMarker(marker: FrozenMarker): Promise<number> {
    let fixed = 0;
    if (!ownMarker(marker, deps.installation)) {
      // Its record is in another Redis or prefix: absent from ours is no sign it was lost.
      leaveAlone(marker, "a container frozen by another Ferry installation that shares this work dir (another Redis or prefix, or this host's Redis settings changed since it froze it); leaving it to that one");
      return 0;
    }
    const rec = await store.get(marker.migrationId);
    if (!rec && !(Date.now() - marker.at <= LOST_RECORD_MAX_AGE_MS)) {
      // A record lost in a crash is seconds old when it goes. One missing after days has
      // expired, and its marker was left by a migration that needed a person (the container
      // may have run elsewhere since): bringing back that old checkpoint could make two.
      leaveAlone(marker, 'a container frozen long ago for a migration whose record has expired; not bringing it back (check where it runs, then remove the marker or restore it by hand)');
      return 0;
    }
    // A live migration is the engine's to finish; one that needs attention is a person's.
    if (rec && (!TERMINAL_STATES.has(rec.state) || endsOn(rec.state) !== 'source')) return 0;
    const dest = findHost(config, marker.to);
    if (!dest) return 0;
    const lock = await lockContainerOnHost(deps.localRunner, self.name, marker.container, 10_000);
    try {
      // Asked again under the lock: the marker may have gone meanwhile, and the container may
      // have been brought back by hand and frozen again by a newer migration, whose freeze
      // this old marker must not undo (that migration restores it elsewhere: two copies).
      if (!(await readFrozenMarker(self.workDir, marker.migrationId))) return 0;
      // Another migration froze the same container too: which freeze is the container's state
      // now is not for a repair pass to guess (the markers' times come from workers' clocks).
      // Left alone while the other marker is there; its migration's cleanup or rollback removes
      // it, and then this one is found stale (gone, or running again) or acted on.
      const other = (await listFrozenMarkers(self.workDir)).find((m) => m.containerId === marker.containerId && m.migrationId !== marker.migrationId);
      if (other) {
        leaveAlone(marker, `a container frozen for an ended migration, and frozen again for migration ${other.migrationId}; leaving it to that one`);
        return 0;
      }
      const newer = await store.liveHolder({ host: self.name, container: `id:${marker.containerId}` });
      if (newer && newer !== marker.migrationId) {
        leaveAlone(marker, `a container frozen for an ended migration, which migration ${newer} now holds; leaving it to that one`);
        return 0;
      }
      await stopStrayExport(deps.localRunner, migrationFiles({ id: marker.migrationId, from: marker.from, to: marker.to }, config).source.fifo);
      // The destination's lock too, when it answers: with it held no restore runs there, so a
      // copy there that does not run is a leftover that may be removed (recoverFrozen).
      // Busy there means someone works on the container there: asked again next pass.
      const destLock = await lockContainerOnHost(deps.remoteRunner(marker.to), marker.to, marker.container, 10_000).catch((e: unknown) => {
        if (e instanceof StepError && e.code === 'HOST_LOCK_BUSY') throw e;
        return null;
      });
      const there = new Podman(deps.remoteRunner(marker.to), dest.podman);
      let verdict;
      try {
        verdict = await recoverFrozen(marker, {
          config,
          workDir: self.workDir,
          local: new Podman(deps.localRunner, self.podman),
          localRunner: deps.localRunner,
          destination: () => there,
          ...(destLock ? { removeIdleDestinationCopy: () => removeIdleCopy(there, marker) } : {}),
        });
      } finally {
        await destLock?.release();
      }
      if (verdict.kind !== 'stale') log.warn({ migrationId: marker.migrationId, container: marker.container, verdict }, 'a container frozen for a migration that no longer knows it');
      if (verdict.kind === 'restored') fixed++;
      if (!rec && verdict.kind !== 'unknown') {
        const warnings = verdict.kind === 'restored' && verdict.warning ? [verdict.warning] : [];
        // A post-copy migration leaves a page server, a tunnel and a raised pipe limit; found by
        // the id alone. Moved: the source's stopped copy is the whole memory until the last page.
        if (verdict.kind !== 'stale') {
          const parts = { id: marker.migrationId, source: deps.localRunner, dest: deps.remoteRunner(marker.to), destHost: dest };
          // Short: the repair pass (other frozen containers' deadlines) waits meanwhile.
          const waitMs = Math.min(LOST_POSTCOPY_WAIT_MS, config.checkpoint.postCopyDeadlineSeconds * 1000);
          warnings.push(...(await settleLostPostCopy(parts, verdict.kind, waitMs).catch((e: unknown) => [`its post-copy files and page server could not be cleared (${coerceError(e).message})`])));
        }
        await settleLostRecord(marker, verdict.kind, warnings);
      }
      // Its migration has ended, or its lost record was settled just above: nothing else needs the proof.
      if (verdict.kind === 'on-destination') await removeFrozenMarker(self.workDir, marker.migrationId);
    } finally {
      await lock.release();
    }
    return fixed;
  }

  /**
   * The migration's record itself was lost (it was only seconds old when Redis crashed):
   * its files go, and a final record says what happened, so that the id the user was given
   * answers instead of "not found" and the migration has ended.
   */
  async function settleLostRecord(marker: FrozenMarker, where: 'stale' | 'restored' | 'on-destination', warnings: string[]): Promise<void> {
    const files = migrationFiles({ id: marker.migrationId, from: marker.from, to: marker.to }, config);
    for (const f of [...archiveCopies(files.source), files.source.fifo]) await removeFile(f);
    await deps
      .remoteRunner(marker.to)
      .run(['rm', '-f', '--', ...archiveCopies(files.destination)])
      .catch(() => undefined);
    const now = Date.now();
    const onDestination = where === 'on-destination';
    const state = onDestination ? 'needs-attention' : 'failed-rolled-back';
    const error = onDestination
      ? `the migration's record was lost (a Redis crash); the container runs on ${marker.to} and ${marker.from} keeps a stopped copy: remove it once the container on ${marker.to} is checked`
      : `the migration's record was lost (a Redis crash) after the container was frozen; host ${marker.from} found it and brought it back`;
    const rec: MigrationRecord = {
      v: RECORD_VERSION,
      id: marker.migrationId,
      container: marker.container,
      from: marker.from,
      to: marker.to,
      state,
      step: 'rollback',
      createdAt: marker.at,
      updatedAt: now,
      finishedAt: now,
      probe: { kind: 'none' },
      source: undefined,
      history: [],
      warnings,
      error,
    };
    try {
      await store.create(rec);
      await store.ended(rec, state, now, error);
    } catch (e: unknown) {
      // Written meanwhile by someone else: theirs stands.
      log.debug({ migrationId: marker.migrationId, err: coerceError(e).message }, 'lost record not re-created');
    }
  }

  /**
   * A paused queue (Bull Board; `ferry drain` cordons instead) holds every job of this host.
   * For a migration that has not frozen anything yet that is a pause; for one that has, it
   * strands a frozen container (its deadline job waits in the same queue), or a moved one
   * whose source copy and locks are never released. So while such a migration's next move
   * is on this host, the queue is resumed, with a warning: a pause holds only migrations
   * that have not started to move. Seeds 305002 and 410022 found it: a pause whose resume
   * was lost in a Redis crash.
   */
  async function repairPaused(live: MigrationRecord[]): Promise<number> {
    let resumed = 0;
    for (const queue of [queues.get(self.name), queues.urgent(self.name)]) resumed += await resumeIfHolding(queue, live);
    return resumed;
  }

  async function resumeIfHolding(queue: Queue, live: MigrationRecord[]): Promise<number> {
    if (!(await queue.isPaused())) return 0;
    const moving = new Set(live.filter((r) => r.frozenAt && hostForStep(r, r.step) === self.name).map((r) => r.id));
    // A record may have lost frozenAt in a crash; this disk's marker has not.
    for (const marker of await listFrozenMarkers(self.workDir)) {
      const rec = await store.get(marker.migrationId);
      if (rec && !TERMINAL_STATES.has(rec.state)) moving.add(rec.id);
    }
    if (moving.size === 0) return 0;
    await queue.resume();
    log.warn({ queue: queue.name, migrationIds: [...moving] }, 'queue was paused while migrations that froze their container wait on it; resumed it (to keep new work off a host, drain it: ferry drain)');
    return 1;
  }

  /** One pass; errors are returned to the caller's error handler, never thrown past it. */
  return async function repairOnce(): Promise<{ jobs: number; frozen: number; paused: number }> {
    const live = (await store.list({ since: Date.now() - LOOK_BACK_MS, limit: 1000 })).filter((r) => !TERMINAL_STATES.has(r.state));
    // First, and on its own: nothing else in the pass can move while the queue is paused.
    const paused = await repairPaused(live);
    const jobs = await repairJobs(live).catch((e: unknown) => {
      throw coerceError(e);
    });
    const frozen = await repairFrozen();
    return { jobs, frozen, paused };
  };
}
