import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFrozenMarker } from '../../src/archive/frozenMarker';
import { SshError } from '../../src/errors';
import type { CommandResult } from '../../src/exec/runner';
import { Podman } from '../../src/podman/podman';
import { rollback } from '../../src/steps/rollback';
import { fakeContext, fakeHost, inspectJson, type FakeHost } from '../support/fakePodman';

/**
 * Rollback's decision when nothing on the source can bring the container back (a cleanup that
 * ran, which a Redis crash made the record forget): the destination's copy may be the only
 * one, and must never be removed, whatever the answer to "what runs there?" was.
 * podman is faked as a runner answering its commands (recorded inspect output).
 */
const SOURCE_ID = 'f'.repeat(64);
const OTHER_ID = 'e'.repeat(64);

const context = (source: FakeHost, dest: FakeHost) => fakeContext(source, dest, { state: 'rolling-back', step: 'rollback', frozenAt: Date.now() - 5000, source: { id: SOURCE_ID, image: 'x', imageId: 'y', ports: [] } });
const removals = (h: FakeHost): string[][] => h.calls.filter((c) => c.includes('rm') || c.includes('rmi') || c[0] === 'runc');
const running = (id: string): CommandResult => ({ code: 0, stdout: inspectJson(id, true), stderr: '' });

describe('rollback with nothing left on the source never removes the destination copy', () => {
  it('when asking the destination fails once, the attempt fails; the running copy stays', async () => {
    const source = fakeHost('host a', [null]);
    const dest = fakeHost('host b', [{ code: 125, stdout: '', stderr: 'Error: database is locked' }, running(SOURCE_ID)]);
    await assert.rejects(rollback(context(source, dest)), /database is locked/);
    assert.deepEqual(removals(dest), [], 'nothing removed on the destination');
  });

  it('a copy there that does not run is left too, and the migration ends needing a person', async () => {
    const source = fakeHost('host a', [null]);
    const dest = fakeHost('host b', [{ code: 0, stdout: inspectJson(SOURCE_ID, false), stderr: '' }]);
    await assert.rejects(rollback(context(source, dest)), (e: Error & { code?: string }) => e.code === 'ROLLBACK_IMPOSSIBLE' && e.message.includes('left untouched'));
    assert.deepEqual(removals(dest), []);
  });

  it('a running copy there ends the migration, left running', async () => {
    const source = fakeHost('host a', [null]);
    const dest = fakeHost('host b', [running(SOURCE_ID)]);
    await assert.rejects(rollback(context(source, dest)), (e: Error & { code?: string }) => e.code === 'RUNS_ON_DESTINATION');
    assert.deepEqual(removals(dest), []);
  });

  it('another container by its name on the source is not the container: nothing anywhere is touched', async () => {
    const source = fakeHost('host a', [running(OTHER_ID)]);
    const dest = fakeHost('host b', [running(SOURCE_ID)]);
    await assert.rejects(rollback(context(source, dest)), (e: Error & { code?: string }) => e.code === 'ROLLBACK_IMPOSSIBLE' && e.message.includes('another container named "web"'));
    assert.deepEqual(removals(dest), []);
    assert.deepEqual(removals(source), []);
  });
});

describe('rollback when the destination cannot be reached (finding 19)', () => {
  const unreachable = (): FakeHost => {
    const calls: string[][] = [];
    const runner = {
      where: 'host b',
      run: (argv: readonly string[]) => {
        calls.push([...argv]);
        return Promise.reject(new SshError('b', 'unreachable', 'cannot reach host b over SSH: connect ETIMEDOUT'));
      },
    };
    return { runner, podman: new Podman(runner, ['podman']), calls };
  };
  const exited = { code: 0, stdout: inspectJson(SOURCE_ID, false), stderr: '' };
  const frozen = (): FakeHost => fakeHost('host a', [exited, exited, running(SOURCE_ID)]);
  const restored = (h: FakeHost): boolean => h.calls.some((c) => c.join(' ').includes('container restore'));

  const handedOver = (runId: string | null) => ({ migrationId: 'm-test1-0123abcd', container: 'web', containerId: SOURCE_ID, from: 'a', to: 'b', at: Date.now() - 5000, handedOverAt: Date.now() - 3000, handedOverRunId: runId });

  it('handed over, and Redis restarted since (the record may have lost restoreStartedAt): nothing is restored here', async () => {
    const source = frozen();
    const ctx = context(source, unreachable());
    await writeFrozenMarker(ctx.files.source.dir, handedOver('1'.repeat(40)));
    await assert.rejects(rollback(ctx), (e: Error & { code?: string }) => e.code === 'DESTINATION_UNKNOWN' && e.message.includes('restarted or failed over'));
    assert.ok(!restored(source), 'the source stays frozen: the destination may run it');
  });

  it('handed over, but the run id at the hand-over is unknown: nothing is restored here either', async () => {
    const source = frozen();
    const ctx = context(source, unreachable());
    await writeFrozenMarker(ctx.files.source.dir, handedOver(null));
    await assert.rejects(rollback(ctx), (e: Error & { code?: string }) => e.code === 'DESTINATION_UNKNOWN');
    assert.ok(!restored(source));
  });

  it('handed over, the same Redis since: the record is whole, restore never started, the source comes back', async () => {
    const source = frozen();
    const ctx = context(source, unreachable());
    await writeFrozenMarker(ctx.files.source.dir, handedOver(await ctx.redisRunId()));
    await rollback(ctx);
    assert.ok(restored(source));
  });

  it('handed over, same run id, but Redis Sentinel is configured (a split can hide a promoted replica): nothing is restored here', async () => {
    const source = frozen();
    const ctx = context(source, unreachable());
    ctx.config.redis.sentinel.sentinels = ['198.18.0.1:26379'];
    await writeFrozenMarker(ctx.files.source.dir, handedOver(await ctx.redisRunId()));
    await assert.rejects(rollback(ctx), (e: Error & { code?: string }) => e.code === 'DESTINATION_UNKNOWN' && e.message.includes('Sentinel or Cluster'));
    assert.ok(!restored(source));
  });

  it('an archive here but no marker (a cleanup stopped halfway, then a rewind): not imported', async () => {
    const source = fakeHost('host a', [null]);
    const ctx = fakeContext(source, unreachable(), {
      state: 'rolling-back',
      step: 'rollback',
      frozenAt: Date.now() - 5000,
      source: { id: SOURCE_ID, image: 'x', imageId: 'y', ports: [] },
      archive: { file: 'a', sha256: 'b', bytes: 1, compression: 'zstd', streamed: true },
    });
    mkdirSync(ctx.files.source.dir, { recursive: true });
    writeFileSync(ctx.files.source.archive, 'x');
    await assert.rejects(rollback(ctx), (e: Error & { code?: string }) => e.code === 'DESTINATION_UNKNOWN' && e.message.includes('no frozen marker'));
    assert.ok(!restored(source), 'nothing imported');
  });

  it('never handed over: no restore can have started there, so the source comes back', async () => {
    const source = frozen();
    const ctx = context(source, unreachable());
    await writeFrozenMarker(ctx.files.source.dir, { migrationId: ctx.rec.id, container: 'web', containerId: SOURCE_ID, from: 'a', to: 'b', at: Date.now() - 5000 });
    const out = await rollback(ctx);
    assert.ok(restored(source));
    assert.match(String(out.patch?.warnings?.join(' ')), /restore never started/);
  });
});
