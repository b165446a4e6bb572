import type { CriuStats } from '../podman/parse';
import type { StepName } from './steps';

export type { StepName };

/** A migration's id: `m-<time base36>-<8 hex>`. Ids name files on hosts, so nothing else is accepted. */
export const MIGRATION_ID = /^m-[a-z0-9]{1,16}-[a-f0-9]{8}$/;

// The states and what each means are defined in ./states; re-exported for the many importers of the model.
import type { MigrationState } from './states';
export type { MigrationState };
export { TERMINAL_STATES } from './states';

export type HealthProbe = { kind: 'none' } | { kind: 'auto' } | { kind: 'http'; port: number; path: string } | { kind: 'tcp'; port: number } | { kind: 'exec'; argv: string[] };

/** How a container's memory moves (docs/post-copy.md); the request's choice, or checkpoint.memoryCopy. */
export const MEMORY_COPY_MODES = ['plain', 'post-copy', 'auto'] as const;
export type MemoryCopy = (typeof MEMORY_COPY_MODES)[number];

/**
 * A post-copy migration's facts. Set by preflight when it chose post-copy; the ports when the
 * checkpoint sets it up (before the freeze); mode once the dump was split (or not); allPagesAt
 * once the destination holds every page, which is when the source may let its copy go.
 */
export interface PostCopyState {
  deadlineSeconds: number;
  serverPort?: number;
  lazyPort?: number;
  /** lazy: the archive holds no lazy pages, the source serves them; whole: the split failed, a plain restore. */
  mode?: 'lazy' | 'whole';
  imagesDir?: string;
  keepDir?: string;
  lazyPages?: number;
  /** When the destination's last page arrived (its clock, ms since the epoch). */
  allPagesAt?: number;
}

export interface StepRecord {
  step: StepName;
  host: string;
  attempt: number;
  startedAt: number;
  finishedAt?: number;
  ok?: boolean;
  error?: string;
  /** Anything the step measured: bytes, CRIU stats, whether it found the work already done. */
  result?: Record<string, unknown>;
}

export interface ArchiveInfo {
  /** File name inside each host's workDir, for people to read; steps derive paths from the id (engine/files.ts). */
  file: string;
  sha256: string;
  bytes: number;
  compression: 'none' | 'gzip' | 'zstd';
  /** The checkpoint streamed it to the destination, where it arrived whole with this hash. */
  streamed: boolean;
  /** Set when the file is encrypted (see archive/cipher.ts); the hash and size are the encrypted file's. */
  encryption?: { cipher: 'aes-256-gcm'; keyId: string };
  /** Volumes left out of the archive: Ferry copied them to the destination itself (steps/volumes.ts). */
  volumes?: string[];
}

/**
 * The record format this code writes and understands. A worker that meets a newer one
 * refuses the step (the migration then rolls back or ends needing attention, never sticks).
 */
export const RECORD_VERSION = 1;

/** The one attempt of a step allowed to change the record or touch a container (fencing). */
export interface CurrentAttempt {
  step: StepName;
  /** Random, new for every attempt; every record update and side effect checks it. */
  token: string;
  host: string;
  /** BullMQ's attempt number, or 0 for a take-over by the source (deadline, cancel). */
  n: number;
  startedAt: number;
}

export interface LockPair {
  host: string;
  /** A container name, or `id:<full id>` for the source container's identity. */
  container: string;
}

export interface MigrationRecord {
  /** Record format (RECORD_VERSION); absent in records written before versions existed. */
  v?: number;
  id: string;
  container: string;
  from: string;
  to: string;
  state: MigrationState;
  /** The step now running or next to run. */
  step: StepName;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  probe: HealthProbe;
  batchId?: string;
  /** What preflight saw of the container on the source; later steps check against it. */
  source?: {
    id: string;
    image: string;
    imageId: string;
    ports: { hostPort: number; protocol: string }[];
    /** Its IPv4 addresses (absent in records from before they were kept). */
    addresses?: string[];
  };
  archive?: ArchiveInfo;
  checkpointStats?: CriuStats;
  restoreStats?: CriuStats;
  /**
   * The Redis history (master run id / replication id, StepContext.redisRunId) in which the
   * archive was first handed to the destination, as the source's frozen marker keeps it; null
   * when it could not be read. A restore that cannot ask the source relies on it (finding 25).
   */
  handedOverRunId?: string | null;
  /** Set before restore runs on the destination: from then on the destination may hold the container. */
  restoreStartedAt?: number;
  /** When the container was frozen and when it answered again on the destination (ms since epoch). */
  frozenAt?: number;
  answeredAt?: number;
  bytesTransferred?: number;
  history: StepRecord[];
  /** Set when a step attempt starts; replaced by the next one. */
  attempt?: CurrentAttempt;
  /** Every lock this migration took (at submission, then on the resolved identity in preflight). */
  locks?: LockPair[];
  error?: string;
  /** Why the migration failed, kept while rollback runs. */
  failure?: { step: StepName; error: string };
  warnings: string[];
  cancelRequested?: boolean;
  /** What was asked for; absent in records from before post-copy: plain. */
  memoryCopy?: MemoryCopy;
  postCopy?: PostCopyState;
  /** Why memory moved plain although post-copy or auto was asked for. */
  memoryCopyReason?: string;
}

export interface MigrationEvent {
  migrationId: string;
  type: 'created' | 'step-started' | 'progress' | 'step-done' | 'step-failed' | 'state' | 'log';
  at: number;
  step?: StepName;
  host?: string;
  state?: MigrationState;
  percent?: number;
  bytes?: number;
  totalBytes?: number;
  message?: string;
  attempt?: number;
  durationMs?: number;
}
