import { strict as assert } from 'node:assert';
import { loadConfig } from '../../src/config/load';
import { RECORD_VERSION } from '../../src/engine/model';
import { createRedis, type RedisConnection } from '../../src/redis';
import { MigrationStore } from '../../src/store/migrationStore';
import { containerState, makeConfig, mustPodman, onHost, removeContainers, runCounter, startWorker, uid, type TestConfig, type WorkerProc } from '../support/bed';
import { sleep } from '../support/services';

/**
 * A cold read (2026-12-03): the repair loop brings back a container that a migration froze
 * and that migration has ended "on the source" (failed, cancelled). It never asked whether the
 * container had since been frozen again by a newer migration: an operator restores it by hand
 * and moves it on; while the new migration restores it on b, repair restores the old freeze in
 * place on a, and it runs twice. Set up on host a with real podman: the container checkpointed
 * (the new migration's freeze, its restore under way on b), an old marker of an ended
 * migration and a new one of the live migration; a real worker's repair passes must leave it frozen.
 */
describe('repair and a container frozen again since its old migration ended', function () {
  this.timeout(120_000);
  const name = `sup-${uid()}`;
  let cfg: TestConfig;
  let redis: RedisConnection;
  let workDir = '';
  const stamp = Date.now().toString(36);
  const oldId = `m-${stamp}o-0000aaaa`;
  const newId = `m-${stamp}n-0000bbbb`;
  let worker: WorkerProc | undefined;

  before(() => {
    cfg = makeConfig({ top: { worker: { lockDurationMs: 6000, stalledIntervalMs: 2000, repairIntervalMs: 1000 } } });
    const config = loadConfig({ file: cfg.file, env: {} });
    redis = createRedis(config);
    workDir = config.hosts.find((h) => h.name === 'a')?.workDir ?? '/var/lib/ferry/archives';
  });

  after(async () => {
    await worker?.stop();
    removeContainers([name]);
    onHost('a', ['rm', '-f', `${workDir}/${oldId}.frozen`, `${workDir}/${newId}.frozen`]);
    const left = await redis.keys(`${cfg.prefix}:*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });

  it('leaves it frozen for the newer migration, and both markers where they are', async () => {
    runCounter('a', name);
    await sleep(1000);
    const containerId = mustPodman('a', 'container', 'inspect', '--format', '{{.Id}}', name);
    mustPodman('a', 'container', 'checkpoint', name);
    const now = Date.now();
    const base = {
      v: RECORD_VERSION,
      container: name,
      from: 'a',
      to: 'b',
      createdAt: now - 120_000,
      updatedAt: now,
      probe: { kind: 'none' as const },
      history: [],
      warnings: [],
      source: { id: containerId, image: '', imageId: '', ports: [] },
    };
    const store = new MigrationStore(redis, cfg.prefix);
    await store.create({ ...base, id: oldId, state: 'failed', step: 'checkpoint', frozenAt: now - 60_000, finishedAt: now - 50_000 });
    await store.create({ ...base, id: newId, state: 'running', step: 'restore', frozenAt: now - 5000, restoreStartedAt: now - 4000 });
    assert.deepEqual(await store.lock(newId, [{ host: 'a', container: `id:${containerId}` }]), { ok: true });
    const marker = (id: string, at: number) => JSON.stringify({ migrationId: id, container: name, containerId, from: 'a', to: 'b', at });
    for (const [id, at] of [
      [oldId, now - 60_000],
      [newId, now - 5000],
    ] as const) {
      const w = onHost('a', ['sh', '-c', 'mkdir -p "$1" && cat > "$1/$2.frozen"', 'sh', workDir, id], { input: marker(id, at) });
      assert.equal(w.code, 0, w.stderr);
    }
    worker = await startWorker('a', cfg);
    await sleep(8000);
    assert.equal(containerState('a', name), 'exited', 'still frozen (checkpointed), not brought back beside the restore on b');
    assert.equal(onHost('a', ['test', '-e', `${workDir}/${oldId}.frozen`]).code, 0, "the old migration's marker is left alone");
    assert.equal(onHost('a', ['test', '-e', `${workDir}/${newId}.frozen`]).code, 0, "the live migration's marker stays");
  });
});
