import { strict as assert } from 'node:assert';
import { lockContainerOnHost } from '../../src/exec/hostLock';
import { LocalRunner } from '../../src/exec/localRunner';
import { StepError } from '../../src/errors';
import { uid } from '../support/bed';

/** The per-host container lock, with real flock processes on this machine. */
describe('one attempt at a time per container and host', function () {
  this.timeout(30_000);
  const runner = new LocalRunner('this machine');

  it('makes a second holder wait, and lets it in once the first releases', async () => {
    const name = `hl-${uid()}`;
    const first = await lockContainerOnHost(runner, 'x', name, 5000);
    await assert.rejects(lockContainerOnHost(runner, 'x', name, 1000), (e: unknown) => e instanceof StepError && e.code === 'HOST_LOCK_BUSY');
    const waiting = lockContainerOnHost(runner, 'x', name, 5000);
    await new Promise((r) => setTimeout(r, 300));
    await first.release();
    await first.release();
    const second = await waiting;
    await second.release();
  });

  it('keeps hosts and containers apart', async () => {
    const name = `hl-${uid()}`;
    const a = await lockContainerOnHost(runner, 'a', name, 2000);
    const b = await lockContainerOnHost(runner, 'b', name, 2000);
    const other = await lockContainerOnHost(runner, 'a', `${name}-2`, 2000);
    await Promise.all([a.release(), b.release(), other.release()]);
  });

  it('outlives an abort of the attempt holding it (its commands may still be dying), and goes with release()', async () => {
    const name = `hl-${uid()}`;
    const controller = new AbortController();
    const held = await lockContainerOnHost(runner, 'x', name, 2000, controller.signal);
    controller.abort(new Error('superseded'));
    await assert.rejects(lockContainerOnHost(runner, 'x', name, 1000), (e: unknown) => e instanceof StepError && e.code === 'HOST_LOCK_BUSY');
    await held.release();
    const next = await lockContainerOnHost(runner, 'x', name, 10_000);
    await next.release();
  });

  it('stops waiting when the attempt is aborted, and never holds it then', async () => {
    const name = `hl-${uid()}`;
    const first = await lockContainerOnHost(runner, 'x', name, 5000);
    const controller = new AbortController();
    const waiting = lockContainerOnHost(runner, 'x', name, 20_000, controller.signal);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    controller.abort(new Error('superseded'));
    await assert.rejects(waiting, /stopped/);
    assert.ok(Date.now() - t0 < 10_000, 'the wait ended with the abort, not at its limit');
    await first.release();
    const next = await lockContainerOnHost(runner, 'x', name, 2000);
    await next.release();
  });
});
