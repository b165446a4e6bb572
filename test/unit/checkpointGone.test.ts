import { strict as assert } from 'node:assert';
import { AlreadyMovedError, SshError } from '../../src/errors';
import { Podman } from '../../src/podman/podman';
import { checkpoint } from '../../src/steps/checkpoint';
import { fakeContext, fakeHost, inspectJson, type FakeHost } from '../support/fakePodman';

/**
 * The container is gone from the source while the record is back at checkpoint: a Sentinel
 * failover (CI, 2026-12-04) dropped every write of a migration that had moved it, cleanup
 * included. Ferry asks the destination before calling the container lost.
 */
const SOURCE_ID = 'f'.repeat(64);
const OTHER_ID = 'e'.repeat(64);
const context = (source: FakeHost, dest: FakeHost) => fakeContext(source, dest, { state: 'running', step: 'checkpoint', source: { id: SOURCE_ID, image: 'x', imageId: 'y', ports: [] } });
const inspect = (id: string, running: boolean) => ({ code: 0, stdout: inspectJson(id, running), stderr: '' });
const touched = (h: FakeHost): string[][] => h.calls.filter((c) => !/container (inspect|exists)/.test(c.join(' ')) && c[0] !== 'pkill');

describe('checkpoint: the container is gone from the source', () => {
  it('runs on the destination with the ID preflight saw: the move happened, the migration goes on from verify', async () => {
    const source = fakeHost('host a', [null]);
    const dest = fakeHost('host b', [inspect(SOURCE_ID, true)]);
    await assert.rejects(checkpoint(context(source, dest)), (e: unknown) => e instanceof AlreadyMovedError && e.containerId === SOURCE_ID);
    assert.deepEqual(touched(dest), [], 'nothing run on the destination but inspect');
  });

  it('another container by that name there, or a stopped copy: gone for good, a permanent failure', async () => {
    for (const answer of [inspect(OTHER_ID, true), inspect(SOURCE_ID, false), null]) {
      const source = fakeHost('host a', [null]);
      const dest = fakeHost('host b', [answer]);
      await assert.rejects(checkpoint(context(source, dest)), (e: Error & { code?: string; permanent?: boolean }) => e.code === 'CONTAINER_GONE' && e.permanent === true);
      assert.deepEqual(touched(dest), []);
    }
  });

  it('the destination cannot be asked: the attempt fails to be tried again, not as lost', async () => {
    const source = fakeHost('host a', [null]);
    const runner = { where: 'host b', run: () => Promise.reject(new SshError('b', 'unreachable', 'cannot reach host b over SSH: connect ETIMEDOUT')) };
    const dest: FakeHost = { runner, podman: new Podman(runner, ['podman']), calls: [] };
    await assert.rejects(checkpoint(context(source, dest)), (e: Error & { code?: string; permanent?: boolean }) => e.code === 'CONTAINER_GONE_UNKNOWN' && !e.permanent && e.message.includes('host b'));
  });
});
