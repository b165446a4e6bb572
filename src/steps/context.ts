import type { Logger } from 'pino';
import type { FerryConfig } from '../config/load';
import type { HostConfig } from '../config/hosts';
import type { MigrationFiles } from '../engine/files';
import type { HostLock } from '../exec/hostLock';
import type { LockPair, MigrationRecord } from '../engine/model';
import type { StepName } from '../engine/steps';
import type { CommandRunner } from '../exec/runner';
import type { Podman } from '../podman/podman';

export interface RemoteHost {
  host: HostConfig;
  runner: CommandRunner;
  podman: Podman;
}

export interface Progress {
  percent: number;
  bytes?: number;
  totalBytes?: number;
  message?: string;
}

/** What a step gets to work with; built by the worker, faked in nothing but unit tests of pure parts. */
export interface StepContext {
  rec: MigrationRecord;
  step: StepName;
  /** Every file this migration touches, on both hosts (engine/files.ts). */
  files: MigrationFiles;
  config: FerryConfig;
  /** The host this worker runs on, and its podman run locally. */
  self: HostConfig;
  /** This Ferry installation's id (engine/installation.ts), written into what it leaves on a host's disk. */
  installation: string;
  local: Podman;
  localRunner: CommandRunner;
  remote(hostName: string): RemoteHost;
  /** Aborted when this attempt must stop (time limit, lost job lock, taken over); commands stop with it. */
  signal: AbortSignal;
  /**
   * Throws unless this attempt is still the current one. Called right before every
   * irreversible act (freeze, restore, remove): a superseded attempt must not touch a container.
   */
  fence(): Promise<void>;
  /** Takes the container's lock on another host (see exec/hostLock.ts); release it when done. */
  lockOn(host: string): Promise<HostLock>;
  /** Persists a marker before a step crosses a point of no return (e.g. restore started); fenced like fence(). */
  mark(patch: Partial<MigrationRecord>): Promise<MigrationRecord>;
  progress(p: Progress): Promise<void>;
  /** Which Redis server, and which history of its data, holds the record (store/migrationStore.ts, serverRunId); null when unknown. */
  redisRunId(): Promise<string | null>;
  /**
   * Adds locks to the migration's own (kept in the record, released when it ends); throws a
   * permanent CONFLICT error naming the holder when another live migration has one.
   */
  claim(pairs: LockPair[]): Promise<void>;
  log: Logger;
}

export interface StepOutcome {
  /** Measurements and facts for the step's history entry. */
  result: Record<string, unknown>;
  /** Fields to store on the migration record when the step completes. */
  patch?: Partial<MigrationRecord>;
}

export type Step = (ctx: StepContext) => Promise<StepOutcome>;
