import type { RedisConnection as IORedis } from '../redis';
import { keys, Keys } from './keys';

/** Cordons: a cordoned host takes no new migrations (it is being drained or maintained). */
export class HostState {
  private readonly k: Keys;
  private readonly key: string;

  constructor(
    private readonly redis: IORedis,
    prefix: string,
  ) {
    this.k = keys(prefix);
    this.key = this.k.cordoned;
  }

  async cordon(host: string, reason: string): Promise<void> {
    await this.redis.hset(this.key, host, JSON.stringify({ at: Date.now(), reason }));
  }

  async uncordon(host: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, host)) > 0;
  }

  async isCordoned(host: string): Promise<boolean> {
    return (await this.redis.hexists(this.key, host)) === 1;
  }

  async all(): Promise<Record<string, { at: number; reason: string }>> {
    const raw = await this.redis.hgetall(this.key);
    const out: Record<string, { at: number; reason: string }> = {};
    for (const [h, v] of Object.entries(raw)) out[h] = JSON.parse(v) as { at: number; reason: string };
    return out;
  }

  /** The last drain of a host, so `undrain --move-back` knows what to bring back. */
  async rememberDrain(host: string, batchId: string): Promise<void> {
    await this.redis.set(this.k.lastDrain(host), batchId);
  }

  async lastDrain(host: string): Promise<string | null> {
    return this.redis.get(this.k.lastDrain(host));
  }
}
