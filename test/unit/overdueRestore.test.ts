import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load';
import type { MigrationRecord } from '../../src/engine/model';
import { judgeOverdueRestore, OVERDUE_RECHECK_MS } from '../../src/engine/overdueRestore';
import type { CommandResult, CommandRunner } from '../../src/exec/runner';
import { inspectJson } from '../support/fakePodman';

/**
 * The frozen container's deadline after restore started on the destination (finding 21):
 * never a take-back while a restore may run there, never a silent stop either.
 * The destination is a fake runner answering inspect, `true`, and the container's lock.
 */
const ID = 'f'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'ferry-overdue-test-'));
const file = join(dir, 'ferry.json');
writeFileSync(file, JSON.stringify({ hosts: ['a', 'b'].map((name, i) => ({ name, address: `198.18.0.${11 + i}`, ssh: { privateKey: '/k' } })) }));
const config = loadConfig({ file, env: {} });

interface Dest {
  runner: CommandRunner;
  calls: string[];
  locksHeld: () => number;
}

function dest(opts: { reachable?: boolean; running?: boolean; lockBusy?: boolean; runtimeHolds?: boolean }): Dest {
  const calls: string[] = [];
  let held = 0;
  const runner: CommandRunner = {
    where: 'host b',
    async run(argv, o): Promise<CommandResult> {
      const cmd = argv.join(' ');
      calls.push(cmd);
      if (opts.reachable === false) return { code: 255, stdout: '', stderr: 'ssh: connect to host b: No route to host' };
      if (cmd.includes('container exists')) return { code: opts.running === undefined ? 1 : 0, stdout: '', stderr: '' };
      if (cmd.includes('container inspect')) return opts.running === undefined ? { code: 125, stdout: '', stderr: 'Error: no such container web' } : { code: 0, stdout: inspectJson(ID, opts.running), stderr: '' };
      if (argv[0] === 'runc') return opts.runtimeHolds ? { code: 0, stdout: JSON.stringify({ id: ID, status: 'running' }), stderr: '' } : { code: 1, stdout: '', stderr: 'container does not exist' };
      if (argv[0] === 'test') return { code: 1, stdout: '', stderr: '' };
      if (argv[3] === 'ferry-lock') {
        if (opts.lockBusy) return { code: 1, stdout: '', stderr: '' };
        held++;
        (o?.stdout as Writable).write('locked\n');
        await new Promise<void>((r) => (o?.stdin as Readable).once('end', r).resume());
        held--;
        return { code: 0, stdout: '', stderr: '' };
      }
      return { code: 0, stdout: '', stderr: '' };
    },
  };
  return { runner, calls, locksHeld: () => held };
}

function record(restoreAgoMs: number): MigrationRecord {
  const now = Date.now();
  return {
    id: 'm-test1-0123abcd',
    container: 'web',
    from: 'a',
    to: 'b',
    state: 'running',
    step: 'restore',
    createdAt: now,
    updatedAt: now,
    probe: { kind: 'none' },
    history: [],
    warnings: [],
    frozenAt: now - restoreAgoMs - 1000,
    restoreStartedAt: now - restoreAgoMs,
    source: { id: ID, image: 'x', imageId: 'y', ports: [] },
  };
}

const pastBudget = config.timeouts.step.restore + 60_000;

describe('judgeOverdueRestore: the deadline of a container whose restore started', () => {
  it('an unreachable destination goes to a person', async () => {
    const d = dest({ reachable: false });
    const v = await judgeOverdueRestore(record(pastBudget), { config, remoteRunner: () => d.runner, pauseMs: 1 });
    assert.equal(v.kind, 'unreachable');
    assert.equal(d.calls.filter((c) => c === 'true').length, 3, 'asked three times first: a blip is not a verdict');
  });

  it('running there: nothing to take back, asked again later', async () => {
    const d = dest({ running: true });
    const v = await judgeOverdueRestore(record(pastBudget), { config, remoteRunner: () => d.runner });
    assert.equal(v.kind, 'runs-there');
  });

  it('within the restore time limit: waits until it has passed, without taking the lock', async () => {
    const d = dest({});
    const now = Date.now();
    const v = await judgeOverdueRestore(record(1000), { config, remoteRunner: () => d.runner }, now);
    assert.equal(v.kind, 'wait');
    assert.ok(v.kind === 'wait' && v.recheckAt >= now + config.timeouts.step.restore - 1000);
    assert.ok(!d.calls.some((c) => c.includes('ferry-lock')));
  });

  it('past it, but an attempt holds the container there: waits', async () => {
    const d = dest({ lockBusy: true });
    const now = Date.now();
    const v = await judgeOverdueRestore(record(pastBudget), { config, remoteRunner: () => d.runner }, now);
    assert.equal(v.kind, 'wait');
    assert.ok(v.kind === 'wait' && v.recheckAt === now + OVERDUE_RECHECK_MS);
  });

  it('past it, lock free, not running there: taken back, with the lock held for the caller', async () => {
    const d = dest({ running: false });
    const v = await judgeOverdueRestore(record(pastBudget), { config, remoteRunner: () => d.runner });
    assert.equal(v.kind, 'take-back');
    assert.equal(d.locksHeld(), 1, 'the lock is held until the record says rollback');
    if (v.kind === 'take-back') await v.lock.release();
    assert.equal(d.locksHeld(), 0);
  });

  it('running there under its runtime only (podman killed mid-restore): never taken back', async () => {
    const d = dest({ running: false, runtimeHolds: true });
    const v = await judgeOverdueRestore(record(pastBudget), { config, remoteRunner: () => d.runner });
    assert.equal(v.kind, 'runs-there');
    assert.equal(d.locksHeld(), 0);
  });

  it('running there once the lock is had: released, nothing taken back', async () => {
    let n = 0;
    const d = dest({ running: false });
    const inner = d.runner.run.bind(d.runner);
    const runner: CommandRunner = {
      where: 'host b',
      run: (argv, o) => (argv.join(' ').includes('container inspect') && ++n > 1 ? Promise.resolve({ code: 0, stdout: inspectJson(ID, true), stderr: '' }) : inner(argv, o)),
    };
    const v = await judgeOverdueRestore(record(pastBudget), { config, remoteRunner: () => runner });
    assert.equal(v.kind, 'runs-there');
    assert.equal(d.locksHeld(), 0);
  });
});
