/** Every Redis key Ferry writes outside BullMQ's own, in one place. */
export function keys(prefix: string) {
  return {
    migration: (id: string) => `${prefix}:migration:${id}`,
    migrations: `${prefix}:migrations`,
    events: `${prefix}:events`,
    migrationEvents: (id: string) => `${prefix}:events:${id}`,
    lock: (host: string, container: string) => `${prefix}:lock:${host}:${container}`,
  };
}
