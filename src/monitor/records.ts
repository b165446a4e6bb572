import { MigrationRecord, TERMINAL_STATES } from '../engine/model';
import type { MigrationStore } from '../store/migrationStore';

const MGET_CHUNK = 500;

/**
 * Every migration record under one prefix, for views and metrics that need all of them.
 * A record in an end state never changes again, so it is read once and kept; each refresh
 * reads only the index, new records and the ones still moving. Records Redis expired
 * (30 days) drop out, and so do they from the metrics derived from them.
 */
export class RecordCache {
  private readonly done = new Map<string, MigrationRecord>();

  constructor(private readonly store: MigrationStore) {}

  /** All records, newest first. */
  async all(): Promise<MigrationRecord[]> {
    const ids = await this.store.allIds();
    const want = ids.filter((id) => !this.done.has(id));
    const fresh = new Map<string, MigrationRecord>();
    for (let i = 0; i < want.length; i += MGET_CHUNK) {
      const chunk = want.slice(i, i + MGET_CHUNK);
      for (const rec of await this.store.getMany(chunk)) {
        if (TERMINAL_STATES.has(rec.state)) this.done.set(rec.id, rec);
        else fresh.set(rec.id, rec);
      }
    }
    const live = new Set(ids);
    for (const id of this.done.keys()) if (!live.has(id)) this.done.delete(id);
    const out: MigrationRecord[] = [];
    for (const id of ids) {
      const r = this.done.get(id) ?? fresh.get(id);
      if (r) out.push(r);
    }
    return out;
  }
}
