import { strict as assert } from 'node:assert';
import { SshError } from '../../src/errors';
import type { CommandResult, CommandRunner } from '../../src/exec/runner';
import { Podman } from '../../src/podman/podman';
import { ensureSourceNotRunning } from '../../src/steps/sourceNotRunning';
import type { StepContext } from '../../src/steps/context';
import { fakeContext, fakeHost, inspectJson, type FakeHost } from '../support/fakePodman';

/**
 * Finding 25: restore asks the source whether it runs the container again, so that a rollback
 * Redis lost (which brought the container back there) cannot be followed by a second copy here.
 * The source's podman and runc are faked as a runner.
 */
const SOURCE_ID = 'f'.repeat(64);
const OTHER_ID = 'e'.repeat(64);
const RUN_ID = `${'0'.repeat(40)}/${'0'.repeat(40)}`;
const answer = (id: string, running: boolean): CommandResult => ({ code: 0, stdout: inspectJson(id, running), stderr: '' });

/** The source as the destination's worker sees it: podman answers `inspect`, runc `state` answers `runtime`. */
function source(inspect: CommandResult | null, runtime: string | null = null): FakeHost {
  const host = fakeHost('host a', [inspect]);
  const inner = host.runner;
  const runner: CommandRunner = {
    where: inner.where,
    run: (argv, opts) => {
      if (argv[0] === 'runc' && runtime) {
        host.calls.push([...argv]);
        return Promise.resolve({ code: 0, stdout: `{"id": "${SOURCE_ID}", "status": "${runtime}"}`, stderr: '' });
      }
      return inner.run(argv, opts);
    },
  };
  return { runner, podman: new Podman(runner, ['podman']), calls: host.calls };
}

const unreachable = (): FakeHost => {
  const runner: CommandRunner = { where: 'host a', run: () => Promise.reject(new SshError('a', 'unreachable', 'cannot reach host a over SSH: connect ETIMEDOUT')) };
  return { runner, podman: new Podman(runner, ['podman']), calls: [] };
};

/** A restore's context on host b, whose remote host a is `src`. */
function onDestination(src: FakeHost, handedOverRunId: string | null = RUN_ID, sentinel = false): StepContext {
  const dest = fakeHost('host b', [null]);
  const ctx = fakeContext(src, dest, { state: 'running', step: 'restore', handedOverRunId, source: { id: SOURCE_ID, image: 'x', imageId: 'y', ports: [] } });
  const redis = { ...ctx.config.redis, sentinel: { ...ctx.config.redis.sentinel, sentinels: sentinel ? ['127.0.0.1:26379'] : [] } };
  return { ...ctx, config: { ...ctx.config, redis }, local: dest.podman, localRunner: dest.runner, remote: (name) => ({ ...ctx.remote(name), runner: src.runner, podman: src.podman }) };
}

const refused = (code: string, permanent: boolean) => (e: Error & { code?: string; permanent?: boolean }) => e.code === code && !!e.permanent === permanent;

describe('restore asks the source whether it runs the container again (finding 25)', () => {
  it('the source keeps its frozen, exited copy: go on', async () => {
    await ensureSourceNotRunning(onDestination(source(answer(SOURCE_ID, false))), SOURCE_ID);
  });

  it('podman there runs it (a rollback the record lost): refused for good', async () => {
    await assert.rejects(ensureSourceNotRunning(onDestination(source(answer(SOURCE_ID, true))), SOURCE_ID), refused('SOURCE_RUNS', true));
  });

  it('only its runtime runs it there, or is restoring it: refused too', async () => {
    for (const state of ['running', 'restoring']) {
      await assert.rejects(ensureSourceNotRunning(onDestination(source(answer(SOURCE_ID, false), state)), SOURCE_ID), refused('SOURCE_RUNS', true));
    }
  });

  it('no copy there, or another container by that name: the archive here is the copy, go on', async () => {
    await ensureSourceNotRunning(onDestination(source(null)), SOURCE_ID);
    await ensureSourceNotRunning(onDestination(source(answer(OTHER_ID, true))), SOURCE_ID);
  });

  it('cannot be asked, one Redis that kept every write since the hand-over: go on', async () => {
    await ensureSourceNotRunning(onDestination(unreachable()), SOURCE_ID);
  });

  it('cannot be asked, and Redis restarted since, or its run id was never known, or Sentinel: the attempt fails, to be tried again', async () => {
    const other = `${'1'.repeat(40)}/${'0'.repeat(40)}`;
    for (const ctx of [onDestination(unreachable(), other), onDestination(unreachable(), null), onDestination(unreachable(), RUN_ID, true)]) {
      await assert.rejects(ensureSourceNotRunning(ctx, SOURCE_ID), (e: Error & { code?: string; permanent?: boolean }) => refused('SOURCE_UNKNOWN', false)(e) && e.message.includes('ETIMEDOUT'));
    }
  });
});
