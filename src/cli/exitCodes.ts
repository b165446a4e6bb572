import type { MigrationRecord } from '../engine/model';
import { ConfigError, FerryError, ValidationError } from '../errors';

/** 0 done; 1 the migration did not succeed; 2 bad input or config; 3 Ferry could not do its job. */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 3 } as const;

export function exitCodeFor(e: Error): number {
  if (e instanceof ValidationError || e instanceof ConfigError) return EXIT.usage;
  if (e instanceof FerryError && (e.code === 'CONFLICT' || e.code === 'NOT_FOUND')) return EXIT.usage;
  return EXIT.internal;
}

export function outcomeCode(rec: MigrationRecord): number {
  return rec.state === 'succeeded' ? EXIT.ok : EXIT.failed;
}
