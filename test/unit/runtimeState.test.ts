import { strict as assert } from 'node:assert';
import { Podman } from '../../src/podman/podman';
import type { CommandResult, CommandRunner } from '../../src/exec/runner';

const ID = '452a541af26ddc79f9df8c3a67b4068ca8e8eeefffa25aa056aa2a8d98590be1';
// Recorded on the bed (runc 1.1.5): `runc state` of a container podman lost when it was killed mid-restore.
const RUNNING = `{\n  "ociVersion": "1.0.2-dev",\n  "id": "${ID}",\n  "pid": 20306,\n  "status": "running",\n  "owner": ""\n}\n`;
const MISSING = `time="2026-12-02T01:53:10Z" level=error msg="container does not exist"\n`;

/** A runner that answers from a table and records what it was asked. */
function fake(answers: (argv: readonly string[]) => CommandResult | Error): CommandRunner & { asked: string[][] } {
  const asked: string[][] = [];
  return {
    where: 'host t',
    asked,
    run(argv) {
      asked.push([...argv]);
      const a = answers(argv);
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
}

describe("the runtime's own view of a container (what podman may have lost)", () => {
  it('reads the status runc reports, with the runtime named in the podman command', async () => {
    const r = fake(() => ({ code: 0, stdout: RUNNING, stderr: '' }));
    assert.equal(await new Podman(r, ['podman', '--runtime', '/usr/local/bin/runc']).runtimeState(ID), 'running');
    assert.deepEqual(r.asked[0], ['/usr/local/bin/runc', 'state', ID]);
    const r2 = fake(() => ({ code: 0, stdout: RUNNING, stderr: '' }));
    await new Podman(r2, ['podman', '--runtime=crun']).runtimeState(ID);
    assert.equal(r2.asked[0][0], 'crun');
  });

  it('tells a restore under way (state folder, no state yet) from nothing at all', async () => {
    const under = fake((argv) => (argv[0] === 'test' ? { code: 0, stdout: '', stderr: '' } : { code: 1, stdout: '', stderr: MISSING }));
    assert.equal(await new Podman(under, ['podman']).runtimeState(ID), 'restoring');
    assert.deepEqual(under.asked[1], ['test', '-d', `/run/runc/${ID}`]);
    const none = fake((argv) => (argv[0] === 'test' ? { code: 1, stdout: '', stderr: '' } : { code: 1, stdout: '', stderr: MISSING }));
    assert.equal(await new Podman(none, ['podman']).runtimeState(ID), null);
  });

  it('a host without the runtime holds nothing of it; any other failure is not read as "nothing"', async () => {
    const enoent = Object.assign(new Error('spawn runc ENOENT'), { code: 'ENOENT' });
    assert.equal(
      await new Podman(
        fake(() => enoent),
        ['podman'],
      ).runtimeState(ID),
      null,
    );
    assert.equal(
      await new Podman(
        fake(() => ({ code: 127, stdout: '', stderr: 'sh: runc: not found' })),
        ['podman'],
      ).runtimeState(ID),
      null,
    );
    await assert.rejects(
      new Podman(
        fake(() => ({ code: 1, stdout: '', stderr: 'permission denied' })),
        ['podman'],
      ).runtimeState(ID),
      /permission denied/,
    );
  });

  it('never kills a running copy where it is the container itself; deletes it where it must not run', async () => {
    const running = fake((argv) => (argv[1] === 'state' ? { code: 0, stdout: RUNNING, stderr: '' } : { code: 0, stdout: '', stderr: '' }));
    await assert.rejects(new Podman(running, ['podman']).reapRuntimeLeftover(ID, { keepRunning: true }), /outside podman's sight/);
    assert.ok(!running.asked.some((a) => a[1] === 'delete'));
    let deleted = false;
    const doomed = fake((argv) => {
      if (argv[1] === 'delete') {
        deleted = true;
        return { code: 0, stdout: '', stderr: '' };
      }
      return deleted ? { code: 1, stdout: '', stderr: MISSING } : { code: 0, stdout: RUNNING, stderr: '' };
    });
    assert.equal(await new Podman(doomed, ['podman']).reapRuntimeLeftover(ID), true);
    assert.ok(doomed.asked.some((a) => a.join(' ') === `runc delete --force ${ID}`));
  });

  it('waits for a restore under way, then refuses to guess', async () => {
    const under = fake((argv) => (argv[0] === 'test' ? { code: 0, stdout: '', stderr: '' } : { code: 1, stdout: '', stderr: MISSING }));
    await assert.rejects(new Podman(under, ['podman']).reapRuntimeLeftover(ID, { waitMs: 600 }), /still under way/);
  });
});
