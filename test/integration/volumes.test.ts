import { strict as assert } from 'node:assert';
import { bed, containerState, ferry, makeConfig, migrationId, record, mustPodman, onHost, readCounter, removeContainers, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import type { MigrationRecord } from '../../src/engine/model';
import { counterAt, sleep } from '../support/faults';
import { itExtended } from '../support/tier';

// Two bed hosts; FERRY_TEST_VOLUME_HOSTS=h,i runs it beside a campaign that holds a..c.
const [SRC, DST] = (process.env.FERRY_TEST_VOLUME_HOSTS ?? 'a,b').split(',');

/** The bed's counter, that also appends every count to a log on the volume: a gap or a repeat there is lost or doubled data. */
const LOGGING_COUNTER = 'tok=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$tok $i" > /tmp/count.new; mv /tmp/count.new /tmp/count; echo "$tok $i" >> /data/log; sleep 0.1; done';

function volumeExists(host: string, volume: string): boolean {
  return onHost(host, ['podman', 'volume', 'exists', volume]).code === 0;
}

/** The volume's log as the container sees it: one token, counts 1..n with no gap and no repeat. */
function checkLog(host: string, name: string, token: string): number {
  const lines = mustPodman(host, 'exec', name, 'cat', '/data/log').trim().split('\n');
  lines.forEach((l, i) => assert.equal(l, `${token} ${i + 1}`, `line ${i + 1} of /data/log on ${host}`));
  return lines.length;
}

/**
 * Issue 12: a named volume, or a bind-mounted folder declared copied, moves with its
 * container, copied while it runs and once more, only what changed, in the freeze; the
 * source's copy goes (a folder's is renamed aside) at cleanup, so it can move back.
 */
describe('volumes and copied folders move with their container', function () {
  this.timeout(300_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const names: string[] = [];
  const volumes: string[] = [];
  const folders: string[] = [];

  before(async () => {
    cfg = makeConfig({ top: { retry: { backoffMs: 200, attempts: { verify: 1 } }, verify: { timeoutMs: 2000 } } });
    workers = await startWorkers([SRC, DST], cfg);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers(names);
    for (const v of volumes) for (const h of [SRC, DST]) onHost(h, ['podman', 'volume', 'rm', '-f', v]);
    for (const f of folders) for (const h of [SRC, DST]) onHost(h, ['rm', '-rf', '--', f]);
  });

  function startWithVolume(host: string, prefix: string): { name: string; volume: string } {
    const name = `${prefix}-${uid()}`;
    const volume = `${prefix}-data-${uid()}`;
    names.push(name);
    volumes.push(volume);
    mustPodman(host, 'run', '-d', '--name', name, '-v', `${volume}:/data`, bed().image, 'sh', '-c', LOGGING_COUNTER);
    return { name, volume };
  }

  async function migrate(name: string, from: string, to: string, extra: string[] = []): Promise<{ code: number | null; rec: MigrationRecord; out: string }> {
    const res = await ferry(cfg, ['migrate', name, '--from', from, '--to', to, '--wait', ...extra], { timeoutMs: 180_000 });
    return { code: res.code, rec: await record(cfg, migrationId(res.stdout)), out: res.stdout + res.stderr };
  }

  it('moves a named volume there and back: every write made before the freeze arrives once, the source copy goes', async () => {
    const { name, volume } = startWithVolume(SRC, 'vol');
    // Bulk that the copy made while the container runs carries, so the freeze does not.
    mustPodman(SRC, 'exec', name, 'dd', 'if=/dev/urandom', 'of=/data/blob', 'bs=1M', 'count=48');
    const blob = mustPodman(SRC, 'exec', name, 'md5sum', '/data/blob').split(' ')[0];
    const before = await counterAt(SRC, name);

    let hop = [SRC, DST];
    for (const round of [1, 2]) {
      const [from, to] = hop;
      const { code, rec, out } = await migrate(name, from, to);
      assert.equal(code, 0, `round ${round} ${from} -> ${to}:\n${out}`);
      assert.equal(rec.state, 'succeeded');
      assert.equal(containerState(to, name), 'running');
      assert.equal(containerState(from, name), null, `no copy left on ${from}`);
      assert.equal(volumeExists(from, volume), false, `volume ${volume} removed from ${from}`);
      assert.equal(volumeExists(to, volume), true);
      const after = readCounter(to, name);
      assert.equal(after.token, before.token, 'the same process, with its memory');
      assert.ok(after.count > before.count);
      // Everything the process wrote up to the freeze is on the volume there, exactly once,
      // and it goes on writing: the memory and the volume agree. The loop appends a count to
      // the log just after it shows it in /tmp/count: wait for the log to catch up.
      let lines = checkLog(to, name, before.token);
      for (let i = 0; i < 100 && lines < after.count; i++) {
        await sleep(100);
        lines = checkLog(to, name, before.token);
      }
      assert.ok(lines >= after.count, `log has ${lines} lines, counter at ${after.count}`);
      assert.equal(mustPodman(to, 'exec', name, 'md5sum', '/data/blob').split(' ')[0], blob);
      const cp = rec.history.find((h) => h.step === 'checkpoint' && h.ok);
      const vols = (cp?.result as { volumes?: { name: string; presyncBytes: number; frozenBytes: number }[] } | undefined)?.volumes;
      assert.equal(vols?.[0]?.name, volume);
      assert.ok((vols?.[0]?.presyncBytes ?? 0) > 40e6, `the bulk went before the freeze: ${JSON.stringify(vols)}`);
      assert.ok((vols?.[0]?.frozenBytes ?? Infinity) < 2e6, `only the difference went in the freeze: ${JSON.stringify(vols)}`);
      hop = [to, from];
    }
  });

  itExtended('a migration that rolls back takes the copied volume away and keeps every write on the source', async () => {
    const { name, volume } = startWithVolume(SRC, 'volrb');
    const before = await counterAt(SRC, name);
    const { code, rec } = await migrate(name, SRC, DST, ['--probe', 'exec:false']);
    assert.notEqual(code, 0);
    assert.equal(rec.state, 'failed-rolled-back');
    assert.equal(containerState(SRC, name), 'running');
    assert.equal(containerState(DST, name), null);
    assert.equal(volumeExists(DST, volume), false, `the copy of ${volume} on ${DST} was removed`);
    assert.equal(volumeExists(SRC, volume), true);
    const after = readCounter(SRC, name);
    assert.equal(after.token, before.token);
    await sleep(400);
    checkLog(SRC, name, before.token);
  });

  itExtended('copies a bind-mounted folder declared ferry.copy-mounts there and back; each stale source copy is renamed aside; a rollback removes the copy', async () => {
    // /var/lib/containers is each bed host's own (other folders are one file system for all).
    const folder = `/var/lib/containers/ferry-copy-${uid()}`;
    const name = `copy-${uid()}`;
    names.push(name);
    folders.push(folder);
    onHost(SRC, ['mkdir', '-p', folder]);
    mustPodman(SRC, 'run', '-d', '--name', name, '--label', 'ferry.copy-mounts=/data', '-v', `${folder}:/data`, bed().image, 'sh', '-c', LOGGING_COUNTER);
    mustPodman(SRC, 'exec', name, 'dd', 'if=/dev/urandom', 'of=/data/blob', 'bs=1M', 'count=16');
    const blob = mustPodman(SRC, 'exec', name, 'md5sum', '/data/blob').split(' ')[0];
    const before = await counterAt(SRC, name);
    let hop = [SRC, DST];
    for (const round of [1, 2]) {
      const [from, to] = hop;
      const { code, rec, out } = await migrate(name, from, to);
      assert.equal(code, 0, `round ${round} ${from} -> ${to}:\n${out}`);
      assert.equal(containerState(from, name), null);
      assert.equal(readCounter(to, name).token, before.token);
      await sleep(400);
      checkLog(to, name, before.token);
      assert.equal(mustPodman(to, 'exec', name, 'md5sum', '/data/blob').split(' ')[0], blob);
      assert.equal(onHost(from, ['test', '-e', folder]).code, 1, `${folder} is no longer on ${from} under its name`);
      assert.equal(onHost(from, ['test', '-f', `${folder}.ferry-moved-${rec.id}/blob`]).code, 0, `its stale copy is kept aside on ${from}`);
      assert.ok(
        rec.warnings.some((w) => w.includes(`${folder}.ferry-moved-${rec.id}`)),
        'and the record says so',
      );
      folders.push(`${folder}.ferry-moved-${rec.id}`);
      hop = [to, from];
    }
    // Back on SRC: a migration that rolls back leaves no copy on DST.
    const { rec } = await migrate(name, SRC, DST, ['--probe', 'exec:false']);
    assert.equal(rec.state, 'failed-rolled-back');
    assert.equal(containerState(SRC, name), 'running');
    assert.equal(onHost(DST, ['test', '-e', folder]).code, 1, `the copy on ${DST} was removed`);
    checkLog(SRC, name, before.token);
  });

  it('refuses, before anything is copied or frozen, a volume whose name the destination already uses', async () => {
    const { name, volume } = startWithVolume(SRC, 'voltaken');
    onHost(DST, ['podman', 'volume', 'create', volume]);
    const { code, rec } = await migrate(name, SRC, DST);
    assert.notEqual(code, 0);
    assert.equal(rec.state, 'failed');
    assert.equal(rec.frozenAt, undefined);
    assert.match(rec.error ?? '', new RegExp(`host ${DST} already has a volume named ${volume}: Ferry never overwrites one`));
    assert.equal(containerState(SRC, name), 'running');
  });
});
