import { spawn } from 'node:child_process';
import { strict as assert } from 'node:assert';
import { bed, containerState, COUNTER_SCRIPT, endedRecord, ferry, hostInfo, makeConfig, migrationId, record, mustPodman, onHost, readCounter, removeContainers, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import type { MigrationRecord } from '../../src/engine/model';
import { counterAt, holdQueue } from '../support/faults';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The counter of test/support/bed.ts, with extra `podman run` options (mounts, labels, user). */
/** Listens on every IPv4 address at the port given until killed (node: on every bed host, as this test runs there). */
const TAKE_PORT = "require('net').createServer().listen(Number(process.argv[1]), '0.0.0.0')";

function runCounterWith(host: string, name: string, options: string[]): void {
  mustPodman(host, 'run', '-d', '--name', name, ...options, bed().image, 'sh', '-c', COUNTER_SCRIPT);
}

/**
 * Issue 12: what cannot move safely is refused by preflight, before the freeze, with the
 * reason and the way out; a checkpoint CRIU refuses says CRIU's cause, not a log path.
 * On the bed every host shares the machine's root file system except podman's folders
 * (/var/lib/containers is each host's own): /var/tmp is "shared storage" here, a folder
 * under /var/lib/containers is not.
 */
describe('what moves: refusals before the freeze, and CRIU causes', function () {
  this.timeout(180_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const names: string[] = [];
  const volumes: string[] = [];
  const dirs: string[] = [];

  before(async () => {
    cfg = makeConfig();
    workers = await startWorkers(['a', 'b'], cfg);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers(names);
    for (const v of volumes) for (const h of ['a', 'b']) onHost(h, ['podman', 'volume', 'rm', '-f', v]);
    for (const d of dirs) for (const h of ['a', 'b']) onHost(h, ['rm', '-rf', '--', d]);
  });

  /** Migrates and expects a refusal in preflight that left the container running untouched on a. */
  async function expectRefused(name: string, message: RegExp): Promise<MigrationRecord> {
    const before = await counterAt('a', name);
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait']);
    assert.notEqual(res.code, 0, `ferry migrate should have failed:\n${res.stdout}`);
    assert.match(res.stdout + res.stderr, message);
    const rec = await record(cfg, migrationId(res.stdout));
    assert.equal(rec.state, 'failed');
    assert.equal(rec.frozenAt, undefined, 'never frozen');
    assert.deepEqual(
      rec.history.map((h) => [h.step, h.ok]),
      [['preflight', false]],
      'preflight is the one step that ran, and it failed',
    );
    assert.match(rec.error ?? '', message);
    assert.equal(containerState('a', name), 'running');
    assert.equal(containerState('b', name), null, 'nothing on b');
    // It goes on counting: wait for the next count (by polling, not a clock).
    const after = await counterAt('a', name, before.count + 1);
    assert.equal(after.token, before.token, 'the same process runs on a');
    assert.ok(after.count > before.count, `and it kept counting (${before.count} -> ${after.count})`);
    return rec;
  }

  it('refuses a bind mount not declared shared, naming it and the way out', async () => {
    const name = `mv-bind-${uid()}`;
    const dir = `/var/tmp/ferry-mv-${uid()}`;
    names.push(name);
    dirs.push(dir);
    onHost('a', ['mkdir', '-p', dir]);
    runCounterWith('a', name, ['-v', `${dir}:/data`]);
    const rec = await expectRefused(name, new RegExp(`bind mount ${dir} \\(at /data in the container\\)`));
    assert.match(rec.error ?? '', /ferry\.shared-mounts=\/data/);
  });

  it('refuses a published port the destination already listens on, naming the port and what holds it', async () => {
    const name = `mv-port-${uid()}`;
    const holder = `${name}-holder`;
    const port = 19000 + Math.floor(Math.random() * 900);
    names.push(name, holder);
    // Another service on b publishes the same port: podman's restore could not bind it there.
    mustPodman('b', 'run', '-d', '--name', holder, '-p', `${port}:8080`, bed().image, 'sleep', '1000');
    runCounterWith('a', name, ['-p', `${port}:8080`]);
    const rec = await expectRefused(name, new RegExp(`host b already listens on a port that "${name}" publishes: ${port}/tcp \\(tcp LISTEN .*conmon`));
    assert.match(rec.error ?? '', /free it there, or migrate to another host/);
    assert.equal(containerState('b', holder), 'running', "b's own service is untouched");
  });

  it('refuses a bind mount declared shared that the destination does not see', async () => {
    const name = `mv-div-${uid()}`;
    // Each bed host has its own /var/lib/containers: the same path, other content.
    const dir = `/var/lib/containers/ferry-mv-${uid()}`;
    names.push(name);
    dirs.push(dir);
    for (const h of ['a', 'b']) onHost(h, ['mkdir', '-p', dir]);
    runCounterWith('a', name, ['-v', `${dir}:/data`, '--label', 'ferry.shared-mounts=/data']);
    await expectRefused(name, new RegExp(`bind mount ${dir} is declared shared but host b does not see the same directory`));
    assert.equal(onHost('a', ['ls', '-A', dir]).stdout.trim(), '', 'the marker was removed');
  });

  it('moves a bind mount declared shared that the destination sees, and leaves no marker', async () => {
    const name = `mv-shared-${uid()}`;
    const dir = `/var/tmp/ferry-mv-${uid()}`;
    names.push(name);
    dirs.push(dir);
    onHost('a', ['mkdir', '-p', dir]);
    runCounterWith('a', name, ['-v', `${dir}:/data`, '--label', 'ferry.shared-mounts=/data']);
    const before = await counterAt('a', name);
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'exec:cat /tmp/count']);
    assert.equal(res.code, 0, `ferry migrate failed:\n${res.stdout}\n${res.stderr}`);
    const after = readCounter('b', name);
    assert.equal(after.token, before.token);
    assert.equal(containerState('a', name), null);
    assert.equal(onHost('a', ['ls', '-A', dir]).stdout.trim(), '', 'no marker left in the shared folder');
  });

  it('a checkpoint CRIU refuses shows CRIU’s cause in `ferry status`, is not retried, and the container runs on', async () => {
    // This machine's CRIU cannot dump a process of a non-root user ("Can't get rlimit", ../shared/TESTBED.md).
    const name = `mv-user-${uid()}`;
    names.push(name);
    runCounterWith('a', name, ['--user', '1000:1000']);
    const before = await counterAt('a', name);
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait']);
    assert.notEqual(res.code, 0, `ferry migrate should have failed:\n${res.stdout}`);
    const id = migrationId(res.stdout);
    const human = await ferry(cfg, ['status', id]);
    assert.match(human.stdout, /CRIU could not checkpoint the container: Can't get rlimit 0: Operation not permitted \(a process in the container runs as a non-root user/);
    const rec = await record(cfg, id);
    assert.equal(rec.history.filter((h) => h.step === 'checkpoint').length, 1, 'permanent: checkpoint tried once');
    assert.equal(containerState('a', name), 'running');
    assert.equal(containerState('b', name), null);
    // It goes on counting: wait for the next count (by polling, not a clock).
    const after = await counterAt('a', name, before.count + 1);
    assert.equal(after.token, before.token);
    assert.ok(after.count > before.count);
  });

  it('refuses a container on the host network whose listening port the destination already listens on', async () => {
    // --network host publishes nothing: the ports are the ones its processes listen on.
    const name = `mv-hport-${uid()}`;
    const blocker = `mv-hblock-${uid()}`;
    names.push(name, blocker);
    const port = 19000 + Math.floor(Math.random() * 1000);
    mustPodman('a', 'run', '-d', '--name', name, '--network', 'host', bed().image, 'sh', '-c', `httpd -p 127.0.0.1:${port} -h /www; ${COUNTER_SCRIPT}`);
    mustPodman('b', 'run', '-d', '--name', blocker, '--network', 'host', bed().image, '/bin/httpd', '-f', '-p', String(port), '-h', '/www');
    const rec = await expectRefused(name, new RegExp(`host b already listens on a port that "${name}" listens on through the host's network \\(--network host\\): 127\\.0\\.0\\.1:${port}/tcp \\(tcp LISTEN .*httpd`));
    assert.match(rec.error ?? '', /free it there, or migrate to another host/);
    assert.equal(containerState('b', blocker), 'running', "b's own service is untouched");
  });

  it('a restore CRIU refuses shows CRIU’s cause from the destination’s log, and the container comes back', async () => {
    // A host-network httpd moves (its listening socket is restored on the destination's
    // address), unless the destination listens on its port by then: taken on b just after
    // preflight found it free, as by a service starting there meanwhile. b's queue (the
    // restore's) is held until the taker listens, so the taker always wins the race.
    const name = `mv-port-${uid()}`;
    const port = 19000 + Math.floor(Math.random() * 1000);
    names.push(name);
    mustPodman('a', 'run', '-d', '--name', name, '--network', 'host', bed().image, '/bin/httpd', '-f', '-p', String(port), '-h', '/www');
    const held = await holdQueue(cfg, 'b');
    let id = '';
    let rec: MigrationRecord;
    try {
      const start = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--probe', 'none']);
      assert.equal(start.code, 0, start.stderr);
      id = start.stdout.trim();
      rec = await record(cfg, id);
      for (let i = 0; i < 1500 && !rec.history.some((h) => h.step === 'preflight' && h.ok !== undefined); i++) {
        await sleep(10);
        rec = await record(cfg, id);
      }
      assert.ok(
        rec.history.some((h) => h.step === 'preflight' && h.ok),
        `preflight passed: ${JSON.stringify(rec.history)}`,
      );
      const taker = spawn('nsenter', [`--mount=${hostInfo('b').mountns}`, `--net=${hostInfo('b').netns}`, process.execPath, '-e', TAKE_PORT, String(port)], { stdio: 'ignore' });
      try {
        const listening = () => onHost('b', ['ss', '-Hltn', `sport = :${port}`]).stdout.trim() !== '';
        for (let i = 0; i < 300 && !listening(); i++) await sleep(100);
        assert.ok(listening(), `the taker listens on b:${port}`);
        await held.resume();
        rec = await endedRecord(cfg, id, { ms: 120_000, everyMs: 200 });
      } finally {
        taker.kill('SIGKILL');
      }
    } finally {
      await held.resume();
    }
    const human = await ferry(cfg, ['status', id]);
    assert.match(human.stdout, /CRIU could not restore the container: inet: Can't bind inet socket \(id \d+\): Address already in use/);
    assert.equal(rec.history.filter((h) => h.step === 'restore').length, 1, 'permanent: restore tried once');
    assert.equal(containerState('a', name), 'running', 'rolled back to a');
    assert.equal(containerState('b', name), null, 'no copy left on b');
  });
});
