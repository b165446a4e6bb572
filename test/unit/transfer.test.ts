import { strict as assert } from 'node:assert';
import { readFrozenMarker, writeFrozenMarker } from '../../src/archive/frozenMarker';
import { transfer } from '../../src/steps/transfer';
import { fakeContext, fakeHost } from '../support/fakePodman';

/**
 * Transfer hands the archive over: from then on a restore may start on the destination, and
 * the source's own disk says so before the step completes (finding 19 in docs/reliability.md).
 */
const ID = 'f'.repeat(64);
const streamed = { file: 'x', sha256: 'a'.repeat(64), bytes: 10, compression: 'zstd' as const, streamed: true };

describe('transfer: the hand-over is written on the source disk', () => {
  it('a streamed archive: the frozen marker gets handedOverAt', async () => {
    const ctx = fakeContext(fakeHost('host a', []), fakeHost('host b', []), { state: 'running', step: 'transfer', frozenAt: Date.now(), archive: streamed });
    await writeFrozenMarker(ctx.files.source.dir, { migrationId: ctx.rec.id, container: 'web', containerId: ID, from: 'a', to: 'b', at: Date.now() });
    await transfer(ctx);
    const m = await readFrozenMarker(ctx.files.source.dir, ctx.rec.id);
    assert.equal(typeof m?.handedOverAt, 'number');
    assert.equal(m?.handedOverRunId, await ctx.redisRunId(), 'with the Redis server it was said to');
    assert.equal(m?.containerId, ID, 'the rest of the marker is kept');
  });

  it('a transfer run again (after a Redis restart) keeps the first hand-over and its run id', async () => {
    const ctx = fakeContext(fakeHost('host a', []), fakeHost('host b', []), { state: 'running', step: 'transfer', frozenAt: Date.now(), archive: streamed });
    await writeFrozenMarker(ctx.files.source.dir, { migrationId: ctx.rec.id, container: 'web', containerId: ID, from: 'a', to: 'b', at: Date.now(), handedOverAt: 1, handedOverRunId: '1'.repeat(40) });
    const out = await transfer(ctx);
    const m = await readFrozenMarker(ctx.files.source.dir, ctx.rec.id);
    assert.equal(m?.handedOverAt, 1);
    assert.equal(m?.handedOverRunId, '1'.repeat(40), 'a rewind between the two stays visible to rollback');
    assert.equal(out.patch?.handedOverRunId, '1'.repeat(40), 'and to a restore that cannot ask the source');
  });

  it('no marker: the container may no longer be frozen for this migration, so nothing is handed over', async () => {
    const ctx = fakeContext(fakeHost('host a', []), fakeHost('host b', []), { state: 'running', step: 'transfer', frozenAt: Date.now(), archive: streamed });
    await assert.rejects(transfer(ctx), (e: Error & { code?: string }) => e.code === 'NO_FROZEN_MARKER');
  });
});
