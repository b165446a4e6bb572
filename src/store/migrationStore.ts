import { randomBytes } from 'node:crypto';
import type { RedisConnection as IORedis } from '../redis';
import { FerryError, SupersededError } from '../errors';
import { LockPair, MigrationEvent, MigrationRecord, MigrationState, TERMINAL_STATES } from '../engine/model';
import { createScript } from './createScript';
import { keys } from './keys';
import { decodeEvent } from './eventStream';

const EVENTS_MAXLEN = 100_000;
/** How long a record is kept after its last change. */
export const RECORD_TTL_S = 30 * 24 * 3600;
// How long a lock may exist before its migration record does (submission takes milliseconds).
const LOCK_GRACE_MS = 60_000;

export type LockResult = { ok: true } | { ok: false; heldBy: string; host: string };

/** A migration holds its container's name on both hosts. */
export function lockPairs(rec: Pick<MigrationRecord, 'from' | 'to' | 'container'>): LockPair[] {
  return [
    { host: rec.from, container: rec.container },
    { host: rec.to, container: rec.container },
  ];
}

/** Every lock a migration may hold: those of its submission and those preflight added. */
export function heldLocks(rec: Pick<MigrationRecord, 'from' | 'to' | 'container' | 'locks'>): LockPair[] {
  const all = [...lockPairs(rec), ...(rec.locks ?? [])];
  return all.filter((p, i) => all.findIndex((q) => q.host === p.host && q.container === p.container) === i);
}

/** Why an attempt holding `token` may no longer act on the record, or null if it may. */
export function fenceProblem(rec: MigrationRecord, token: string): string | null {
  if (TERMINAL_STATES.has(rec.state)) return `migration ${rec.id} already ended (${rec.state})`;
  if (rec.attempt?.token !== token) {
    const now = rec.attempt ? `${rec.attempt.step} attempt ${rec.attempt.n} on ${rec.attempt.host}` : 'no attempt';
    return `migration ${rec.id} was taken over (current: ${now}, step ${rec.step}); this attempt's work is discarded`;
  }
  return null;
}

export function newMigrationId(now = Date.now()): string {
  return `m-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * KEYS[1] the record; ARGV: the text read, the text to write, its TTL. 1 written (or already
 * ours: this very write, resent after its reply was lost), 0 changed meanwhile, -1 gone.
 */
const COMPARE_AND_SET = `local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur == ARGV[2] then return 1 end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1`;

const CREATE = createScript();

/**
 * KEYS[1] a lock; ARGV: the holder's value seen, ours. 1 when it was still that holder's and is
 * now ours (or is ours already: this replace, resent after its reply was lost).
 */
const REPLACE_LOCK = `local cur = redis.call('GET', KEYS[1])
if cur == ARGV[2] then return 1 end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

/**
 * Migration records (JSON per id, indexed by creation time), their event streams and the
 * per-container locks. Updates are read-modify-write with a compare-and-set, so a cancel from
 * the CLI and a step finishing on a worker never overwrite each other.
 */
// The server's run id (new with each process) and its replication id (new with each promotion,
// and taken from the master by a replica that resyncs): together, which history of the data
// this is. Not a master: none (a read-only replica is no place to judge from).
const RUN_ID = `local r = string.match(redis.call('INFO', 'replication'), 'role:(%a+)')
if r ~= 'master' then return false end
local id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local repl = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')
if not id or not repl then return false end
return id .. '/' .. repl`;

export class MigrationStore {
  private readonly k: ReturnType<typeof keys>;
  // Updates from this process go one after another: concurrent ones on one record would only
  // make each other read again.
  private updating: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: IORedis,
    prefix: string,
  ) {
    this.k = keys(prefix);
  }

  async create(rec: MigrationRecord): Promise<void> {
    // Not SET NX: a create resent after a reconnect found its own record and reported "already
    // exists", failing a submission whose migration then ran.
    const ok = await this.redis.eval(CREATE, 2, this.k.migration(rec.id), this.k.migrations, JSON.stringify(rec), RECORD_TTL_S, rec.createdAt, rec.id);
    if (ok !== 1) throw new FerryError(`migration ${rec.id} already exists`);
    await this.event({ migrationId: rec.id, type: 'created', at: rec.createdAt, state: rec.state });
  }

  async get(id: string): Promise<MigrationRecord | null> {
    const text = await this.redis.get(this.k.migration(id));
    return text ? (JSON.parse(text) as MigrationRecord) : null;
  }

  /** Applies `fn` atomically; `fn` may return null to leave the record alone, or throw to refuse. */
  update(id: string, fn: (rec: MigrationRecord) => MigrationRecord | null): Promise<MigrationRecord> {
    return this.serial(() => this.updateNow(id, fn));
  }

  /**
   * An update by a step attempt: applied only while that attempt is the current one and the
   * migration has not ended, atomically with that check; otherwise SupersededError.
   */
  fencedUpdate(id: string, token: string, fn: (rec: MigrationRecord) => MigrationRecord | null): Promise<MigrationRecord> {
    return this.update(id, (r) => {
      const problem = fenceProblem(r, token);
      if (problem) throw new SupersededError(problem);
      return fn(r);
    });
  }

  /**
   * "run id/replication id" of the Redis master that holds this migration's record (in a
   * cluster, the master of its slot: the script runs there). It changes when that server
   * restarts, and when any server is promoted or resyncs from another master. Null when it
   * cannot be had. It does not see a split in which an old master still takes writes while
   * another was promoted: callers trust it only without replication failover (rollback.ts).
   */
  async serverRunId(id: string): Promise<string | null> {
    try {
      const v = await this.redis.eval(RUN_ID, 1, this.k.migration(id));
      return typeof v === 'string' && /^[0-9a-f]{40}\/[0-9a-f]{40}$/.test(v) ? v : null;
    } catch {
      return null;
    }
  }

  /** Throws SupersededError unless the attempt holding `token` is still the current one. */
  async checkFence(id: string, token: string): Promise<MigrationRecord> {
    const rec = await this.get(id);
    if (!rec) throw new SupersededError(`migration ${id} no longer exists`);
    const problem = fenceProblem(rec, token);
    if (problem) throw new SupersededError(problem);
    return rec;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.updating.then(fn);
    this.updating = run.catch(() => undefined);
    return run;
  }

  /**
   * Read, apply `fn`, then write only if the record is still the text that was read (one Lua
   * compare-and-set). Not WATCH/MULTI: ioredis resends unanswered commands after a reconnect,
   * on a new connection where the WATCH is gone, and a resent write then applied blindly. A
   * Redis crash had dropped a just-submitted record; the resent start-of-step write brought it
   * back as `running`, with no job and no index entry, for ever (nemesis seed 1530027).
   */
  private async updateNow(id: string, fn: (rec: MigrationRecord) => MigrationRecord | null): Promise<MigrationRecord> {
    const key = this.k.migration(id);
    const notFound = () => new FerryError(`migration ${id} not found`, { code: 'NOT_FOUND', permanent: true });
    for (let i = 0; i < 50; i++) {
      const text = await this.redis.get(key);
      if (!text) throw notFound();
      const next = fn(JSON.parse(text) as MigrationRecord);
      if (!next) return JSON.parse(text) as MigrationRecord;
      next.updatedAt = Date.now();
      const res = await this.redis.eval(COMPARE_AND_SET, 1, key, text, JSON.stringify(next), RECORD_TTL_S);
      if (res === 1) return next;
      if (res === -1) throw notFound();
    }
    throw new FerryError(`migration ${id}: too much contention updating the record`);
  }

  /** Every migration id the index holds, newest first. */
  allIds(): Promise<string[]> {
    return this.redis.zrevrange(this.k.migrations, 0, -1);
  }

  /** Several records at once, in the order asked; missing ones are left out. */
  async getMany(ids: readonly string[]): Promise<MigrationRecord[]> {
    if (ids.length === 0) return [];
    const texts = await this.redis.mget(ids.map((id) => this.k.migration(id)));
    return texts.filter((t): t is string => t !== null).map((t) => JSON.parse(t) as MigrationRecord);
  }

  async list(opts: { since?: number; limit?: number } = {}): Promise<MigrationRecord[]> {
    const ids = await this.redis.zrevrangebyscore(this.k.migrations, '+inf', opts.since ?? '-inf', 'LIMIT', 0, opts.limit ?? 100);
    return this.getMany(ids);
  }

  /** Appends to the migration's own stream and to the global one the dashboard follows. */
  async event(ev: MigrationEvent): Promise<void> {
    const fields = ['json', JSON.stringify(ev)];
    await this.redis
      .multi()
      .xadd(this.k.migrationEvents(ev.migrationId), 'MAXLEN', '~', '10000', '*', ...fields)
      .expire(this.k.migrationEvents(ev.migrationId), RECORD_TTL_S)
      .xadd(this.k.events, 'MAXLEN', '~', String(EVENTS_MAXLEN), '*', ...fields)
      .exec();
  }

  async events(id: string, afterId = '0'): Promise<{ streamId: string; event: MigrationEvent }[]> {
    const rows = await this.redis.xrange(this.k.migrationEvents(id), afterId === '0' ? '-' : `(${afterId}`, '+');
    return rows.flatMap(([streamId, fields]) => {
      const event = decodeEvent(fields);
      return event ? [{ streamId, event }] : [];
    });
  }

  /**
   * Takes the locks that stop two migrations touching one container at once. A lock whose
   * holder already ended (crashed before releasing) is taken over.
   */
  lock(id: string, pairs: LockPair[]): Promise<LockResult> {
    return this.serial(() => this.lockNow(id, pairs));
  }

  private async lockNow(id: string, pairs: LockPair[]): Promise<LockResult> {
    const taken: string[] = [];
    for (const p of pairs) {
      const key = this.k.lock(p.host, p.container);
      for (;;) {
        // The value carries when it was taken: a lock whose holder has no record yet is
        // being submitted right now, and only a long-recordless one is a crash's leftover.
        const mine = `${id}@${Date.now()}`;
        const set = await this.redis.set(key, mine, 'NX');
        if (set === 'OK') {
          taken.push(key);
          break;
        }
        const value = await this.redis.get(key);
        if (value === null) continue;
        const [holder] = value.split('@');
        // This very SET, resent after its reply was lost: ours now, and released with the
        // others if a later pair is refused (not left behind for the grace period).
        if (value === mine) {
          taken.push(key);
          break;
        }
        // Held since an earlier call (preflight adds pairs to those of the submission).
        if (holder === id) break;
        if (await this.holderLive(value)) {
          for (const t of taken) await this.releaseKey(t, id);
          return { ok: false, heldBy: holder, host: p.host };
        }
        // Holder is gone or finished: replace only if it is still that holder (a compare-and-set,
        // for the reason updateNow gives: a resent write must not take a lock someone took meanwhile).
        if ((await this.redis.eval(REPLACE_LOCK, 1, key, value, `${id}@${Date.now()}`)) === 1) {
          taken.push(key);
          break;
        }
      }
    }
    return { ok: true };
  }

  /** A lock's value (`<migration id>@<ms>`) names a live holder: a migration not yet ended, or one being submitted. */
  private async holderLive(value: string): Promise<boolean> {
    const [holder, at] = value.split('@');
    const rec = await this.get(holder);
    return rec ? !TERMINAL_STATES.has(rec.state) : Date.now() - Number(at) < LOCK_GRACE_MS;
  }

  /** The live migration holding this lock, or null (none, or its holder has ended). */
  async liveHolder(pair: LockPair): Promise<string | null> {
    const value = await this.redis.get(this.k.lock(pair.host, pair.container));
    return value && (await this.holderLive(value)) ? value.split('@')[0] : null;
  }

  /** What every ending shares, whoever ends it: the locks go and followers hear the final state. */
  async ended(rec: MigrationRecord, state: MigrationState, at: number, message?: string): Promise<void> {
    await this.unlock(rec.id, heldLocks(rec));
    await this.event({ migrationId: rec.id, type: 'state', at, state, message });
  }

  async unlock(id: string, pairs: LockPair[]): Promise<void> {
    for (const p of pairs) await this.releaseKey(this.k.lock(p.host, p.container), id);
  }

  private async releaseKey(key: string, id: string): Promise<void> {
    // Delete only our own lock: compare-and-delete in one step.
    await this.redis.eval("local v = redis.call('get', KEYS[1]) if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '@' then return redis.call('del', KEYS[1]) end return 0", 1, key, id);
  }
}
