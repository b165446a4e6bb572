import { strict as assert } from 'node:assert';
import {
  filesOfMigration,
  migrationId,
  bed,
  containerState,
  ferry,
  hostInfo,
  httpGet,
  makeConfig,
  mustPodman,
  podmanOn,
  readCounter,
  removeContainers,
  runCounter,
  runHttpd,
  startWorkers,
  stopWorkers,
  TestConfig,
  uid,
  WorkerProc,
} from '../support/bed';
import { counterAt, sleep } from '../support/faults';

describe('migrate one container between two real hosts', function () {
  this.timeout(180_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const names: string[] = [];

  before(async () => {
    cfg = makeConfig();
    workers = await startWorkers(['a', 'b'], cfg);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers(names);
  });

  it('moves a busy httpd: it answers on b with the same page, a no longer runs it, no archive is left', async () => {
    const name = `web-${uid()}`;
    names.push(name);
    const port = 18000 + Math.floor(Math.random() * 1000);
    runHttpd('a', name, port);
    // `podman run -d` returns once the container started, not once httpd listens.
    let before = await httpGet(hostInfo('a').address, port);
    for (let i = 0; i < 100 && before?.status !== 200; i++) {
      await sleep(100);
      before = await httpGet(hostInfo('a').address, port);
    }
    assert.equal(before?.status, 200, 'httpd answers on a before the migration');

    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait']);
    assert.equal(res.code, 0, `ferry migrate failed:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /transfer/);
    assert.match(res.stdout, /state:\s+succeeded/);

    const after = await httpGet(hostInfo('b').address, port);
    assert.equal(after?.status, 200, 'answers on b');
    assert.equal(after?.body, before?.body, 'same content');
    assert.equal(await httpGet(hostInfo('a').address, port), null, 'nothing answers on a');
    assert.equal(containerState('a', name), null, 'a no longer has the container');
    assert.equal(containerState('b', name), 'running');
    // Only this migration's files: another test run's on the same bed are not this one's to judge.
    const id = migrationId(res.stdout);
    assert.deepEqual(filesOfMigration('a', id), []);
    assert.deepEqual(filesOfMigration('b', id), []);
  });

  it('keeps the memory state: a counter goes on from where it was', async () => {
    const name = `count-${uid()}`;
    names.push(name);
    runCounter('a', name);
    const before = await counterAt('a', name, 3);

    const start = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--probe', 'exec:cat /tmp/count']);
    assert.equal(start.code, 0, start.stderr);
    const id = start.stdout.trim();
    assert.match(id, /^m-/, 'without --wait it prints the migration id');

    let status = '';
    for (let i = 0; i < 120; i++) {
      const s = await ferry(cfg, ['status', id, '--json']);
      status = (JSON.parse(s.stdout) as { state: string }).state;
      if (!['queued', 'running'].includes(status)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(status, 'succeeded');

    const after = readCounter('b', name);
    assert.equal(after.token, before.token, 'same process memory (the token drawn at start survived)');
    assert.ok(after.count > before.count, `counter continued: ${before.count} -> ${after.count}`);
    assert.equal(containerState('a', name), null);
    const human = await ferry(cfg, ['status', id]);
    assert.match(human.stdout, /state:\s+succeeded/);
    assert.match(human.stdout, /checkpoint\s+on a/);
    assert.match(human.stdout, /restore\s+on b/);
  });

  it('copies the image when the destination lacks it', async () => {
    const name = `img-${uid()}`;
    const tag = `localhost/ferry-copytest-${uid()}:1`;
    names.push(name);
    // A new image that exists only on a: commit a container with a file of its own.
    const seed = `seed-${uid()}`;
    mustPodman('a', 'run', '--name', seed, bed().image, 'sh', '-c', `echo ${seed} > /marker`);
    mustPodman('a', 'commit', '-q', seed, tag);
    podmanOn('a', 'rm', '-f', seed);
    try {
      mustPodman('a', 'run', '-d', '--name', name, tag, 'sh', '-c', 'while :; do sleep 1; done');
      assert.notEqual(podmanOn('b', 'image', 'exists', tag).code, 0, 'b lacks the tag before');
      const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'none']);
      assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
      assert.equal(containerState('b', name), 'running');
      assert.equal(mustPodman('b', 'exec', name, 'cat', '/marker'), seed, 'the image that arrived is the one from a');
    } finally {
      removeContainers([name]);
      podmanOn('a', 'rmi', '-f', tag);
      podmanOn('b', 'rmi', '-f', tag);
    }
  });
});
