import { strict as assert } from 'node:assert';
import { lockContainerOnHost } from '../../src/exec/hostLock';
import { LocalRunner } from '../../src/exec/localRunner';
import { abortable } from '../../src/exec/runner';
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

  it('is released when the attempt holding it is aborted', async () => {
    const name = `hl-${uid()}`;
    const controller = new AbortController();
    await lockContainerOnHost(abortable(runner, controller.signal), 'x', name, 2000);
    controller.abort(new Error('superseded'));
    const next = await lockContainerOnHost(runner, 'x', name, 10_000);
    await next.release();
  });
});
