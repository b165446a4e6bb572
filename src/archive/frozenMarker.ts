import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MIGRATION_ID } from '../engine/model';
import { ensurePrivateDir } from './localFiles';

/**
 * A fact kept on the source host's own disk, fsync'd before the container is frozen: "this
 * migration froze this container, to be restored on that host". Redis keeps the same fact
 * in the record, but a Redis that crashes with an AOF fsync'd once a second can lose the
 * last second of it, the record itself even, while the container stays frozen. The marker
 * lets the source find such a container again and bring it back (see engine/repair.ts).
 * It is removed once the container runs again here, or has been removed after a verified
 * destination.
 */
export interface FrozenMarker {
  migrationId: string;
  container: string;
  containerId: string;
  from: string;
  to: string;
  at: number;
  /**
   * The Ferry installation that froze it (engine/installation.ts). Another installation
   * whose workers share this host and work dir finds no record of it in its own Redis: without
   * this it would take the container for one whose record a crash lost, and bring it back here
   * while its own installation restores it elsewhere (finding 12 in docs/reliability.md).
   * Absent in markers written before it existed; those are anyone's, as they were then.
   */
  installation?: string;
  /**
   * When the transfer step saw the whole archive on the destination, so that a restore may
   * start there from then on. Written before that step completes, so it holds whenever the
   * record ever said restore started, even after a Redis crash rewound the record: rollback
   * then cannot take an unreachable destination for one that never restored.
   */
  handedOverAt?: number;
  /**
   * The run id of the Redis server that held the record at the hand-over (null: unknown). The
   * same id later means no restart and no failover since, so nothing of the record was rewound.
   */
  handedOverRunId?: string | null;
}

export const FROZEN_SUFFIX = '.frozen';

export function frozenMarkerPath(dir: string, migrationId: string): string {
  return join(dir, `${migrationId}${FROZEN_SUFFIX}`);
}

/**
 * Written whole or not at all (a temporary file, fsync'd, renamed, the folder fsync'd): a crash
 * halfway through a rewrite must not leave a marker that cannot be read, which would count as none.
 */
export async function writeFrozenMarker(dir: string, m: FrozenMarker): Promise<void> {
  await ensurePrivateDir(dir);
  const path = frozenMarkerPath(dir, m.migrationId);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(m));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Adds `handedOverAt` and the Redis run id to this migration's marker, and returns the run id
 * the marker keeps; null when there is no marker to add them to. The first hand-over is kept as it was: a transfer run again after a
 * Redis restart (which may have rewound the record to before the first) must not replace the
 * first run id with the new one, which would make the rewind look like none.
 */
export async function markHandedOver(dir: string, migrationId: string, at: number, runId: string | null): Promise<{ runId: string | null } | null> {
  const m = await readFrozenMarker(dir, migrationId);
  if (!m) return null;
  if (m.handedOverAt !== undefined) return { runId: m.handedOverRunId ?? null };
  await writeFrozenMarker(dir, { ...m, handedOverAt: at, handedOverRunId: runId });
  return { runId };
}

export async function readFrozenMarker(dir: string, migrationId: string): Promise<FrozenMarker | null> {
  try {
    return parseMarker(await readFile(frozenMarkerPath(dir, migrationId), 'utf8'));
  } catch {
    return null;
  }
}

export async function removeFrozenMarker(dir: string, migrationId: string): Promise<void> {
  await rm(frozenMarkerPath(dir, migrationId), { force: true });
  // A rewrite cut short by a crash (writeFrozenMarker) leaves its temporary file.
  await rm(`${frozenMarkerPath(dir, migrationId)}.tmp`, { force: true });
}

/** Whether `installation` may act on this marker: its own, or one written before markers named theirs. */
export function ownMarker(m: FrozenMarker, installation: string): boolean {
  return m.installation === undefined || m.installation === installation;
}

/** Every marker in a work dir (unreadable or foreign files are skipped). */
export async function listFrozenMarkers(dir: string): Promise<FrozenMarker[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: FrozenMarker[] = [];
  for (const n of names) {
    if (!n.endsWith(FROZEN_SUFFIX)) continue;
    try {
      const m = parseMarker(await readFile(join(dir, n), 'utf8'));
      if (m && `${m.migrationId}${FROZEN_SUFFIX}` === n) out.push(m);
    } catch {
      // Being removed while we read: nothing to do.
    }
  }
  return out;
}

function parseMarker(text: string): FrozenMarker | null {
  const v = JSON.parse(text) as Partial<FrozenMarker>;
  if (typeof v.migrationId !== 'string' || !MIGRATION_ID.test(v.migrationId)) return null;
  if (typeof v.container !== 'string' || typeof v.containerId !== 'string' || typeof v.from !== 'string' || typeof v.to !== 'string') return null;
  const installation = typeof v.installation === 'string' ? { installation: v.installation } : {};
  const handedOver = typeof v.handedOverAt === 'number' ? { handedOverAt: v.handedOverAt, handedOverRunId: typeof v.handedOverRunId === 'string' ? v.handedOverRunId : null } : {};
  return { migrationId: v.migrationId, container: v.container, containerId: v.containerId, from: v.from, to: v.to, at: Number(v.at), ...installation, ...handedOver };
}
