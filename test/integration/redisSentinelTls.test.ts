import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import type { FerryConfig } from '../../src/config/load';
import { loadConfig } from '../../src/config/load';
import type { RedisConnection } from '../../src/redis';
import { checkRedisSettings, createRedis } from '../../src/redis';
import { uid } from '../support/bed';
import { SentinelSet, startSentinelSet } from '../support/redisSentinel';
import { makeCerts, TlsFiles, TlsUnsupported } from '../support/tlsRedis';

/** Rejects with `what` if `p` has not settled within `ms`: ioredis retries a sentinel it cannot talk to forever. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** "host:port" the connection's socket is connected to. */
function peer(conn: IORedis): string {
  return `${conn.stream.remoteAddress ?? '?'}:${conn.stream.remotePort ?? '?'}`;
}

/**
 * Redis Sentinel with TLS: a master, a replica and a sentinel of the test's own on loopback,
 * all TLS only (no plain port at all) and asking clients for a certificate. Ferry must speak
 * TLS, with the configured CA and client certificate, to the sentinel and to the master it
 * names; in clear, it could not get an answer from either.
 */
describe('Redis Sentinel over TLS: own TLS-only master, replica and sentinel', function () {
  this.timeout(60_000);
  let dir = '';
  let files: TlsFiles;
  let set: SentinelSet | undefined;
  let config: FerryConfig;
  const password = randomBytes(16).toString('hex');
  const conns: RedisConnection[] = [];

  /** A Ferry config for the set, as a file loaded the way every command loads it. */
  function configWith(tls: { cert: string; key: string }): FerryConfig {
    const s = set as SentinelSet;
    const file = join(dir, `ferry-${uid()}.json`);
    const redis = {
      url: 'rediss://127.0.0.1',
      password,
      prefix: `stls-${uid()}`,
      tls: { enabled: true, ca: files.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: true },
      sentinel: { name: s.name, sentinels: [s.sentinel], password },
    };
    writeFileSync(file, JSON.stringify({ redis, hosts: [], log: { level: 'silent' } }), { mode: 0o600 });
    // env {}: the test's environment (FERRY_REDIS_URL, ...) must not redirect this to another Redis.
    return loadConfig({ file, env: {} });
  }

  /** A connection that is closed after the test, whatever happens. */
  function connect(c: FerryConfig, extra: Parameters<typeof createRedis>[1] = {}): IORedis {
    const conn = createRedis(c, extra);
    conns.push(conn);
    // Errors show up as rejected commands; without a listener ioredis would print each one.
    conn.on('error', () => undefined);
    return conn as IORedis;
  }

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'ferry-sentinel-tls-'));
    files = makeCerts(dir);
    try {
      set = await startSentinelSet('127.0.0.1', password, dir, { tls: files });
    } catch (e: unknown) {
      if (e instanceof TlsUnsupported) {
        console.log('      skipped: this redis-server has no TLS support');
        this.skip();
      }
      throw e;
    }
    config = configWith({ cert: files.clientCert, key: files.clientKey });
  });

  afterEach(() => {
    for (const c of conns.splice(0)) c.disconnect();
  });

  after(async () => {
    await set?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the set has no plain port: a clear connection to the sentinel or the master gets nothing', async () => {
    const s = set as SentinelSet;
    for (const addr of [s.sentinel, s.master()]) {
      const i = addr.lastIndexOf(':');
      const plain = new IORedis({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)), password, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 3000 });
      plain.on('error', () => undefined);
      try {
        await assert.rejects(
          within(
            10_000,
            `clear PING to ${addr}`,
            plain.connect().then(() => plain.ping()),
          ),
          `a clear connection to ${addr} worked`,
        );
      } finally {
        plain.disconnect();
      }
    }
  });

  it('a TLS connection without the client certificate is refused (so the next tests prove it is sent)', async () => {
    // sentinelRetryStrategy null: one round of the sentinels, then the error, instead of for ever.
    const conn = connect(configWith({ cert: '', key: '' }), { lazyConnect: true, retryStrategy: () => null, sentinelRetryStrategy: () => null, maxRetriesPerRequest: 0 });
    await assert.rejects(
      within(
        10_000,
        'PING without a client certificate',
        conn.connect().then(() => conn.ping()),
      ),
      /All sentinels are unreachable/,
    );
  });

  it("config check's one-shot connection: reaches the master over TLS, noeviction, no warning", async () => {
    // As `ferry config check` connects: no reconnecting, one try per command.
    const conn = connect(config, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1 });
    await within(15_000, 'connect through the TLS sentinel', conn.connect());
    assert.ok(conn.stream instanceof TLSSocket, 'the connection to the master is TLS');
    assert.equal(conn.stream.authorized, true, 'the master certificate was checked against redis.tls.ca');
    assert.deepEqual(await within(10_000, 'checkRedisSettings', checkRedisSettings(conn, config)), []);
    assert.equal(peer(conn), (set as SentinelSet).master(), 'connected to the master the sentinel names');
  });

  it('a BullMQ job goes from Queue to Worker and back over connections from createRedis', async () => {
    const [queueConn, workerConn] = [connect(config), connect(config)];
    const name = `stls-roundtrip-${uid()}`;
    const prefix = config.redis.prefix;
    const queue = new Queue<{ token: string }, { echoed: string }>(name, { connection: queueConn, prefix });
    let worker: Worker<{ token: string }, { echoed: string }> | undefined;
    try {
      const token = uid();
      const result = new Promise<{ echoed: string }>((resolve, reject) => {
        worker = new Worker<{ token: string }, { echoed: string }>(name, async (job) => ({ echoed: job.data.token }), { connection: workerConn, prefix });
        worker.on('completed', (_job, value) => resolve(value));
        worker.on('failed', (_job, err) => reject(err));
        worker.on('error', reject);
      });
      await within(15_000, 'queue.add over the TLS sentinel', queue.add('ping', { token }));
      assert.deepEqual(await within(15_000, 'the job round trip', result), { echoed: token });
      await worker?.close();
      assert.ok(queueConn.stream instanceof TLSSocket && workerConn.stream instanceof TLSSocket, 'both connections to the master are TLS');
      await queue.obliterate({ force: true });
    } finally {
      await worker?.close();
      await queue.close();
    }
  });
});
