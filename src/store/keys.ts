/**
 * Every Redis key Ferry writes outside BullMQ's own, in one place. BullMQ's queues (one per
 * host, `host-<name>`, and `control`) live under the same prefix; their names are in
 * src/queues.ts and src/fleet/schedules.ts.
 */
export function keys(prefix: string) {
  const batch = (id: string) => `${prefix}:batch:${id}`;
  return {
    /** A migration's record (JSON) and the index of all records by creation time. */
    migration: (id: string) => `${prefix}:migration:${id}`,
    migrations: `${prefix}:migrations`,
    /** The global event stream the dashboard follows, and one per migration. */
    events: `${prefix}:events`,
    migrationEvents: (id: string) => `${prefix}:events:${id}`,
    /** The lock a migration holds on a container of a host. */
    lock: (host: string, container: string) => `${prefix}:lock:${host}:${container}`,
    /** Cordoned hosts (hash host -> JSON) and the last drain of each. */
    cordoned: `${prefix}:cordoned`,
    lastDrain: (host: string) => `${prefix}:cordoned:last-drain:${host}`,
    /** A batch's record, its scheduling state, the index of all batches and the running ones. */
    batch,
    batchPending: (id: string) => `${batch(id)}:pending`,
    batchRunning: (id: string) => `${batch(id)}:running`,
    batchLoad: (id: string) => `${batch(id)}:load`,
    /** What each recent pick took, by the pick's token (a resent pick answers the same). */
    batchPicks: (id: string) => `${batch(id)}:picks`,
    batches: `${prefix}:batches`,
    activeBatches: `${prefix}:batches:active`,
  };
}

export type Keys = ReturnType<typeof keys>;
