import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { loadConfig } from '../../src/config/load';
import { createRedis } from '../../src/redis';
import { bed, containerState, ferry, makeConfig, readCounter, removeContainers, runCounter, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import { counterAt } from '../support/faults';
import { RedisClusterNodes, startRedisCluster } from '../support/redisCluster';

/**
 * Ferry on a Redis Cluster (three masters of its own, on the bed's bridge): the workers in
 * the bed's hosts and the CLI talk to the cluster only, and a real container migrates.
 */
describe('Redis Cluster (three masters, password)', function () {
  this.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cluster-'));
  const password = randomBytes(12).toString('hex');
  let cluster: RedisClusterNodes | undefined;
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const name = `cl-${uid()}`;

  before(async () => {
    const bridge = bed().redis.host;
    cluster = await startRedisCluster(bridge, password, dir);
    cfg = makeConfig();
    const c = cfg.config as { redis: Record<string, unknown> };
    // The bed's own Redis stays in the URL: with cluster.nodes set it must not be used.
    c.redis = { ...c.redis, password, cluster: { nodes: cluster.nodes } };
    writeFileSync(cfg.file, JSON.stringify(c, null, 2), { mode: 0o600 });
    workers = await startWorkers(['a', 'b'], cfg);
    runCounter('a', name);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers([name]);
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('config check reaches every master and makes the prefix a hash tag', async () => {
    const r = await ferry(cfg, ['config', 'check']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /config OK; Redis reachable/);
    assert.equal((JSON.parse(r.stdout) as { redis: { prefix: string } }).redis.prefix, `{${cfg.prefix}}`);
    assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'password hidden');
  });

  it('migrates a container with every worker on the cluster, all keys on one slot', async () => {
    const before = await counterAt('a', name);
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'exec:cat /tmp/count']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.equal(containerState('b', name), 'running');
    assert.equal(containerState('a', name), null);
    const after = readCounter('b', name);
    assert.equal(after.token, before.token);
    assert.ok(after.count > before.count, `counter went on: ${before.count} -> ${after.count}`);
    // Every key Ferry and BullMQ wrote lives on one master (one slot): what lets their
    // multi-key scripts run on a cluster at all.
    const conn = createRedis(loadConfig({ file: cfg.file, env: {} })) as Cluster;
    try {
      await conn.ping();
      const perNode = await Promise.all(conn.nodes('master').map((n) => n.keys(`{${cfg.prefix}}*`)));
      const holding = perNode.filter((k) => k.length > 0);
      assert.equal(holding.length, 1, `keys on ${holding.length} masters`);
      assert.ok(
        (holding[0] ?? []).some((k) => k.includes(':migration:')),
        'the migration record is there',
      );
    } finally {
      conn.disconnect();
    }
    const b = bed().redis;
    const stray = execFileSync('redis-cli', ['-h', b.host, '-p', String(b.port), '-a', b.password, '--no-auth-warning', '--scan', '--pattern', `*${cfg.prefix}*`])
      .toString()
      .trim();
    assert.equal(stray, '', "nothing went to the bed's own Redis");
  });
});
