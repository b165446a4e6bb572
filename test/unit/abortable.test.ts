import { strict as assert } from 'node:assert';
import { LocalRunner } from '../../src/exec/localRunner';
import { abortable, type CommandRunner, type RunOptions } from '../../src/exec/runner';
import { Podman } from '../../src/podman/podman';

/*
 * Nemesis seed 3130023 (b2417d7): a checkpoint delivered again after a Redis crash restored its
 * frozen container in place; the take-over at the freeze's deadline stopped that attempt, and
 * with it podman half-way through the restore. The container ran on under runc, outside
 * podman's sight, and the rollback could only hand it to a person (needs-attention).
 */
describe('a stopped step attempt and the commands it runs', () => {
  const SLOW = ['sh', '-c', 'sleep 0.4; echo finished'];

  it('stops an ordinary command', async () => {
    const stop = new AbortController();
    const run = abortable(new LocalRunner(), stop.signal).run(SLOW);
    setTimeout(() => stop.abort(new Error('superseded')), 50);
    await assert.rejects(run, /was stopped/);
  });

  it('lets an uninterruptible one finish, and still holds it to its own time limit', async () => {
    const stop = new AbortController();
    const runner = abortable(new LocalRunner(), stop.signal);
    const run = runner.run(SLOW, { uninterruptible: true });
    setTimeout(() => stop.abort(new Error('superseded')), 50);
    const res = await run;
    assert.equal(res.code, 0);
    assert.equal(res.stdout.trim(), 'finished');
    const limited = await abortable(new LocalRunner(), new AbortController().signal).run(['sleep', '5'], { uninterruptible: true, timeoutMs: 100 });
    assert.notEqual(limited.code, 0, 'killed at its time limit');
  });

  it('tells whoever waits what still runs, and an attempt already stopped starts nothing', async () => {
    const stop = new AbortController();
    const unfinished = new Set<Promise<unknown>>();
    const runner = abortable(new LocalRunner(), stop.signal, unfinished);
    const run = runner.run(SLOW, { uninterruptible: true });
    stop.abort(new Error('superseded'));
    assert.equal(unfinished.size, 1, 'the processor keeps the container locked until it ends');
    await Promise.allSettled([...unfinished]);
    assert.equal((await run).code, 0);
    assert.equal(unfinished.size, 0);
    await assert.rejects(runner.run(SLOW, { uninterruptible: true }), /was stopped|aborted/);
    assert.equal(unfinished.size, 0);
  });

  it("podman's in-place restore runs uninterruptible, within its time limit", async () => {
    const seen: { argv: readonly string[]; opts: RunOptions }[] = [];
    const runner: CommandRunner = {
      where: 'host a (local)',
      run(argv, opts = {}) {
        seen.push({ argv, opts });
        return Promise.resolve({ code: 0, stdout: '', stderr: '' });
      },
    };
    await new Podman(runner, ['podman']).restoreInPlace('web', { tcpEstablished: false, fileLocks: false, timeoutMs: 1000 });
    const restore = seen.find((s) => s.argv.includes('restore'));
    assert.equal(restore?.opts.uninterruptible, true);
    assert.equal(restore?.opts.timeoutMs, 1000);
  });
});
