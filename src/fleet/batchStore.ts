import { randomBytes } from 'node:crypto';
import type { RedisConnection as IORedis } from '../redis';
import { FerryError } from '../errors';
import type { BatchItem, BatchRecord } from './model';
import { createScript } from '../store/createScript';
import { keys, Keys } from '../store/keys';

const TTL_S = 30 * 24 * 3600;

// Picks the first pending item whose hosts both have room, within the batch's parallelism,
// and marks it running, in one atomic step: two workers refilling slots at once cannot
// start the same item twice or overshoot a limit. Each pick carries a token (ARGV[3]) and
// remembers its item under it for a while: a pick resent after its reply was lost answers the
// item it already took, instead of taking a second and leaving the first running unsubmitted.
const PICK = `
local prev = redis.call('hget', KEYS[4], ARGV[3])
if prev then return prev end
if redis.call('scard', KEYS[2]) >= tonumber(ARGV[1]) then return false end
local items = redis.call('lrange', KEYS[1], 0, -1)
for _, it in ipairs(items) do
  local idx, from, to = string.match(it, '^(%d+)|([^|]+)|([^|]+)$')
  local lf = tonumber(redis.call('hget', KEYS[3], from) or '0')
  local lt = tonumber(redis.call('hget', KEYS[3], to) or '0')
  if lf < tonumber(ARGV[2]) and lt < tonumber(ARGV[2]) then
    redis.call('lrem', KEYS[1], 1, it)
    redis.call('sadd', KEYS[2], it)
    redis.call('hincrby', KEYS[3], from, 1)
    redis.call('hincrby', KEYS[3], to, 1)
    redis.call('hset', KEYS[4], ARGV[3], it)
    redis.call('expire', KEYS[4], 3600)
    return it
  end
end
return false`;

// Also KEYS[3] the active set and KEYS[4] the pending list; ARGV[5..] the items' slots.
const CREATE = createScript(`redis.call('SADD', KEYS[3], ARGV[4])
for i = 5, #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]) end
`);

// Frees an item's slot once; a second call for the same item changes nothing.
const DONE = `
if redis.call('srem', KEYS[2], ARGV[1]) == 1 then
  local idx, from, to = string.match(ARGV[1], '^(%d+)|([^|]+)|([^|]+)$')
  redis.call('hincrby', KEYS[3], from, -1)
  redis.call('hincrby', KEYS[3], to, -1)
  return 1
end
return 0`;

export function newBatchId(now = Date.now()): string {
  return `b-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

export function slotOf(item: BatchItem): string {
  return `${item.index}|${item.from}|${item.to}`;
}

/** Batch records and their scheduling state: pending list, running set, per-host load. */
export class BatchStore {
  private readonly keys: Keys;

  constructor(
    private readonly redis: IORedis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  private k(id: string) {
    const k = this.keys;
    return { rec: k.batch(id), pending: k.batchPending(id), running: k.batchRunning(id), load: k.batchLoad(id), picks: k.batchPicks(id) };
  }

  get activeKey(): string {
    return this.keys.activeBatches;
  }

  async create(b: BatchRecord): Promise<void> {
    const k = this.k(b.id);
    // One script, not MULTI with SET NX: a create resent after its reply was lost finds its own
    // record and must not report "already exists" (nor queue the items twice).
    const res = await this.redis.eval(CREATE, 4, k.rec, this.keys.batches, this.activeKey, k.pending, JSON.stringify(b), TTL_S, b.createdAt, b.id, ...b.items.map(slotOf));
    if (res !== 1) throw new FerryError(`batch ${b.id} already exists`);
  }

  async get(id: string): Promise<BatchRecord | null> {
    const t = await this.redis.get(this.k(id).rec);
    return t ? (JSON.parse(t) as BatchRecord) : null;
  }

  async save(b: BatchRecord): Promise<void> {
    await this.redis.set(this.k(b.id).rec, JSON.stringify(b), 'EX', TTL_S);
    if (b.state !== 'running') await this.redis.srem(this.activeKey, b.id);
  }

  async list(limit = 50): Promise<BatchRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.batches, 0, limit - 1);
    if (!ids.length) return [];
    const texts = await this.redis.mget(ids.map((id) => this.k(id).rec));
    return texts.filter((t): t is string => t !== null).map((t) => JSON.parse(t) as BatchRecord);
  }

  async active(): Promise<string[]> {
    return this.redis.smembers(this.activeKey);
  }

  async pick(b: BatchRecord): Promise<string | null> {
    const k = this.k(b.id);
    const token = randomBytes(8).toString('hex');
    const r = await this.redis.eval(PICK, 4, k.pending, k.running, k.load, k.picks, String(b.maxParallel), String(b.perHost), token);
    return typeof r === 'string' ? r : null;
  }

  async done(batchId: string, slot: string): Promise<boolean> {
    const k = this.k(batchId);
    return (await this.redis.eval(DONE, 3, k.pending, k.running, k.load, slot)) === 1;
  }

  async running(batchId: string): Promise<string[]> {
    return this.redis.smembers(this.k(batchId).running);
  }

  async pendingCount(batchId: string): Promise<number> {
    return this.redis.llen(this.k(batchId).pending);
  }

  /** Queued items of a cancelled batch never start. */
  async dropPending(batchId: string): Promise<number> {
    const k = this.k(batchId);
    const res = await this.redis.multi().llen(k.pending).del(k.pending).exec();
    return Number(res?.[0][1] ?? 0);
  }
}
