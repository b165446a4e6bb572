import type IORedis from 'ioredis';
import { FerryConfig, findHost } from './config/load';
import { HealthProbe, MigrationEvent, MigrationRecord, TERMINAL_STATES } from './engine/model';
import { withState } from './engine/transitions';
import { FerryError, ValidationError } from './errors';
import { checkContainerName, checkHostName } from './names';
import { HostQueues } from './queues';
import { createRedis } from './redis';
import { MigrationStore, newMigrationId } from './store/migrationStore';
import { keys } from './store/keys';

export interface MigrateRequest {
  container: string;
  from: string;
  to: string;
  probe?: HealthProbe;
  batchId?: string;
  priority?: number;
}

/**
 * The producer side: what the CLI, the dashboard and library users call. Checks a request
 * against the inventory before anything is queued; close() is safe to call twice.
 */
export class FerryClient {
  readonly store: MigrationStore;
  private readonly queues: HostQueues;
  private readonly blocking: IORedis[] = [];
  private closed = false;

  constructor(
    readonly config: FerryConfig,
    readonly redis: IORedis = createRedis(config),
  ) {
    this.store = new MigrationStore(redis, config.redis.prefix);
    this.queues = new HostQueues(config, redis);
  }

  /** Validates, locks the container on both hosts, records the migration and queues preflight. */
  async migrate(req: MigrateRequest): Promise<MigrationRecord> {
    const container = checkContainerName(req.container);
    const from = checkHostName(req.from);
    const to = checkHostName(req.to);
    for (const [role, name] of [['source', from], ['destination', to]] as const) {
      if (!findHost(this.config, name)) {
        throw new ValidationError(`unknown ${role} host "${name}": the inventory has ${this.config.hosts.map((h) => h.name).join(', ') || 'no hosts'}`);
      }
    }
    if (from === to) throw new ValidationError(`source and destination are the same host ("${from}"): nothing to migrate`);
    const probe = req.probe ?? { kind: 'auto' };
    const now = Date.now();
    const id = newMigrationId(now);
    const lock = await this.store.lock(id, [
      { host: from, container },
      { host: to, container },
    ]);
    if (!lock.ok) {
      throw new FerryError(`container "${container}" is already part of migration ${lock.heldBy} (on host ${lock.host}); wait for it or cancel it first`, { code: 'CONFLICT', permanent: true });
    }
    const rec: MigrationRecord = {
      id,
      container,
      from,
      to,
      state: 'queued',
      step: 'preflight',
      createdAt: now,
      updatedAt: now,
      probe,
      batchId: req.batchId,
      history: [],
      warnings: [],
    };
    try {
      await this.store.create(rec);
      await this.queues.enqueue(from, id, 'preflight', req.priority ? { priority: req.priority } : {});
    } catch (e: unknown) {
      await this.store.unlock(id, [
        { host: from, container },
        { host: to, container },
      ]);
      throw e;
    }
    return rec;
  }

  async get(id: string): Promise<MigrationRecord | null> {
    return this.store.get(id);
  }

  /**
   * Asks a migration to stop. Before the container is frozen it ends as cancelled; once
   * frozen it finishes or rolls back, whichever keeps the container whole.
   */
  async cancel(id: string): Promise<MigrationRecord> {
    return this.store.update(id, (r) => {
      if (TERMINAL_STATES.has(r.state)) return null;
      r.cancelRequested = true;
      if (r.state === 'queued') withState(r, 'cancelled', Date.now(), 'cancelled before it started');
      return r;
    });
  }

  /**
   * Calls `onEvent` for every event of the migration, past and new, until it ends; returns
   * the final record. Reads its own stream with a blocking XREAD on a separate connection.
   */
  async follow(id: string, onEvent: (ev: MigrationEvent) => void, opts: { timeoutMs?: number } = {}): Promise<MigrationRecord> {
    const conn = this.redis.duplicate();
    this.blocking.push(conn);
    const key = keys(this.config.redis.prefix).migrationEvents(id);
    const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity;
    let last = '0';
    try {
      for (;;) {
        const res = await conn.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', key, last);
        for (const [, entries] of res ?? []) {
          for (const [streamId, fields] of entries) {
            last = streamId;
            onEvent(JSON.parse(fields[1]) as MigrationEvent);
          }
        }
        const rec = await this.store.get(id);
        if (!rec) throw new FerryError(`migration ${id} not found`, { code: 'NOT_FOUND', permanent: true });
        if (TERMINAL_STATES.has(rec.state) && (!res || res.length === 0)) return rec;
        if (Date.now() > deadline) throw new FerryError(`gave up waiting for migration ${id} after ${opts.timeoutMs} ms (state: ${rec.state})`, { code: 'WAIT_TIMEOUT' });
      }
    } finally {
      conn.disconnect();
      this.blocking.splice(this.blocking.indexOf(conn), 1);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.blocking) c.disconnect();
    await this.queues.close();
    this.redis.disconnect();
  }
}
