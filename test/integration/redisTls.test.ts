import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import type { RedisConnection } from '../../src/redis';
import { loadConfig } from '../../src/config/load';
import { createRedis, redisOptions } from '../../src/redis';
import { CliResult, ferry, TestConfig, uid } from '../support/bed';
import { makeCerts, startTlsRedis, TlsFiles, TlsRedis, TlsUnsupported } from '../support/tlsRedis';

interface RedisSection {
  url: string;
  password: string;
  prefix: string;
  tls: { enabled: boolean; ca: string; cert: string; key: string; rejectUnauthorized: boolean };
}

/**
 * Redis over TLS, end to end: what docs/security.md used to say was "checked by hand". Not
 * the bed's Redis (it has no TLS listener): our own TLS-only redis-server on loopback with a
 * throwaway CA, all of it in a temporary directory that goes away afterwards.
 */
describe('Redis over TLS: own TLS-only redis-server, throwaway CA', function () {
  this.timeout(30_000);
  let dir = '';
  let files: TlsFiles;
  let server: TlsRedis | undefined;
  let good: TestConfig;
  let base: RedisSection;
  // Hex, so it reads the same in a URL, JSON or a log line: a leak cannot hide by encoding.
  const password = randomBytes(16).toString('hex');
  const wrongPassword = randomBytes(16).toString('hex');

  /** A config file with `redis` as given and a minimal inventory (status and config check never use SSH). */
  function writeConfig(name: string, redis: RedisSection): TestConfig {
    const config = {
      redis,
      hosts: [{ name: 'a', address: '127.0.0.1', ssh: { privateKey: join(dir, 'no-such-key') } }],
      log: { level: 'silent' },
    };
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    return { file, prefix: redis.prefix, config };
  }

  function url(scheme: 'redis' | 'rediss'): string {
    return `${scheme}://127.0.0.1:${server?.port ?? 0}`;
  }

  function run(cfg: TestConfig, args: string[]): Promise<CliResult> {
    return ferry(cfg, args, { timeoutMs: 15_000 });
  }

  function explain(r: CliResult): string {
    return `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  }

  /** Neither password, nor the wrong one we tried, in anything the CLI printed. */
  function assertNoSecret(r: CliResult): void {
    for (const secret of [password, wrongPassword]) {
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `a Redis password was printed:\n${explain(r)}`);
    }
  }

  /** Failed as the README says a broken Redis connection fails: 2 (config) or 3 (could not do its job); never 0, 1 or killed. */
  function assertRefused(r: CliResult): void {
    assert.ok(r.code === 2 || r.code === 3, `expected exit 2 or 3:\n${explain(r)}`);
    assertNoSecret(r);
  }

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'ferry-tls-'));
    files = makeCerts(dir);
    try {
      server = await startTlsRedis(dir, files, password);
    } catch (e: unknown) {
      if (e instanceof TlsUnsupported) {
        // The only reason to skip: everything else (no openssl, no redis-server, a broken
        // certificate) is a failure that someone must look at.
        console.log(`      skipped: this redis-server has no TLS support (${e.message.split('\n').find((l) => /tls/i.test(l)) ?? 'tls-port refused'})`);
        this.skip();
      }
      throw e;
    }
    base = {
      url: url('rediss'),
      password,
      prefix: `tls-${uid()}`,
      tls: { enabled: true, ca: files.ca, cert: '', key: '', rejectUnauthorized: true },
    };
    good = writeConfig('good', base);
  });

  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('config check: exit 0, "Redis reachable", no warning, password hidden', async () => {
    const r = await run(good, ['config', 'check']);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stderr, /config OK; Redis reachable/);
    // The noeviction check reads INFO over the TLS connection: no warning means it got an answer.
    assert.doesNotMatch(r.stderr, /warning/i);
    const printed = JSON.parse(r.stdout) as { redis: RedisSection };
    assert.equal(printed.redis.password, '<hidden>');
    assert.equal(printed.redis.tls.ca, files.ca);
    assertNoSecret(r);
  });

  it('status: exit 0 over TLS', async () => {
    const r = await run(good, ['status']);
    assert.equal(r.code, 0, explain(r));
    // A fresh prefix: reaching Redis and reading an empty list is the whole answer.
    assert.match(r.stdout, /no migrations yet/);
    assertNoSecret(r);
  });

  it('a BullMQ job goes from Queue to Worker and back over connections from createRedis', async () => {
    // env {}: the test's environment (FERRY_REDIS_URL, ...) must not redirect this to another Redis.
    const config = loadConfig({ file: good.file, env: {} });
    assert.ok(redisOptions(config).tls?.ca, 'redisOptions gives ioredis the CA for rediss://');
    // The server has no plain TCP port (--port 0): a job that gets through went over TLS.
    const conns: RedisConnection[] = [createRedis(config), createRedis(config)];
    const [queueConn, workerConn] = conns;
    const name = `tls-roundtrip-${uid()}`;
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
      await queue.add('ping', { token });
      assert.deepEqual(await result, { echoed: token });

      await worker?.close();
      await queue.obliterate({ force: true });
      assert.deepEqual(await queueConn.keys(`${prefix}:${name}:*`), [], 'obliterate left keys behind');
    } finally {
      await worker?.close();
      await queue.close();
      // BullMQ does not close connections it was given.
      for (const c of conns) c.disconnect();
    }
  });

  // Each case runs `status` (the client connection: retries, then reports the last Redis
  // error) and `config check` (its own one-shot connection) side by side: an operator runs
  // either; both must say why.
  async function both(cfg: TestConfig): Promise<{ status: CliResult; check: CliResult }> {
    const [status, check] = await Promise.all([run(cfg, ['status']), run(cfg, ['config', 'check'])]);
    return { status, check };
  }

  it('without tls.ca: refused, names the certificate problem and the URL', async () => {
    const { status, check } = await both(writeConfig('no-ca', { ...base, tls: { ...base.tls, ca: '' } }));
    assertRefused(status);
    assert.match(status.stderr, /self-signed certificate in certificate chain/, explain(status));
    assert.ok(status.stderr.includes(url('rediss')), `the URL is named:\n${explain(status)}`);
    for (const r of [status, check]) {
      assertRefused(r);
      assert.match(r.stderr, /cannot reach Redis \(self-signed certificate in certificate chain at /, explain(r));
      assert.ok(r.stderr.includes(url('rediss')), `the URL is named:\n${explain(r)}`);
    }
  });

  it('wrong password: refused, names authentication', async () => {
    const { status, check } = await both(writeConfig('wrong-password', { ...base, password: wrongPassword }));
    for (const r of [status, check]) {
      // A refused password is bad config: exit 2, like any other config error.
      assert.equal(r.code, 2, explain(r));
      assertNoSecret(r);
      assert.match(r.stderr, /Redis refused the password \((WRONGPASS|NOAUTH)/, explain(r));
    }
  });

  it('plain redis:// against the TLS port: refused, names the URL', async () => {
    const { status, check } = await both(writeConfig('plain', { ...base, url: url('redis'), tls: { ...base.tls, enabled: false } }));
    assertRefused(status);
    assert.match(status.stderr, /cannot reach Redis/, explain(status));
    assert.ok(status.stderr.includes(url('redis')), `the URL is named:\n${explain(status)}`);
    for (const r of [status, check]) {
      assertRefused(r);
      assert.match(r.stderr, /if it only speaks TLS, use a rediss:\/\/ URL/, explain(r));
    }
  });
});
