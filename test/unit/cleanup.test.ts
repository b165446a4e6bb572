import { strict as assert } from 'node:assert';
import { halfRemovedId } from '../../src/podman/parse';
import { cleanup } from '../../src/steps/cleanup';
import { clearDestination } from '../../src/steps/destinationCopy';
import { fakeContext, fakeHost } from '../support/fakePodman';

const ID = 'f'.repeat(64);
// Recorded on the bed (podman 4.3.1): inspect of a container whose `podman rm` was cut short
// (nemesis seed 2600078: the cleanup attempt was paused past its job lock and stopped).
const HALF_REMOVED = `Error: getting container from store "${ID}": container not known\n`;

describe('cleanup after an attempt stopped in the middle of its podman rm', () => {
  it('recognises the half-removed container by its id', () => {
    assert.equal(halfRemovedId(HALF_REMOVED), ID);
    assert.equal(halfRemovedId('Error: no such container web\n'), null);
  });

  it('finishes removing its own half-removed source copy and goes on', async () => {
    const source = fakeHost('host a', [{ code: 125, stdout: '', stderr: HALF_REMOVED }, null]);
    const dest = fakeHost('host b', []);
    const ctx = fakeContext(source, dest, {
      state: 'running',
      step: 'cleanup',
      frozenAt: Date.now() - 5000,
      source: { id: ID, image: 'x', imageId: 'y', ports: [] },
      archive: { file: '', sha256: '', bytes: 0, compression: 'zstd', streamed: true, volumes: [] } as never,
    });
    const out = await cleanup(ctx);
    assert.equal(out.result.removedSource, true);
    assert.ok(
      source.calls.some((c) => c.join(' ').includes(`rm --force --time 0 ${ID}`)),
      'podman rm of the id',
    );
  });

  it("leaves another container's broken entry alone (the error stands)", async () => {
    const other = HALF_REMOVED.replace(ID, 'e'.repeat(64));
    const source = fakeHost('host a', [{ code: 125, stdout: '', stderr: other }]);
    const ctx = fakeContext(source, fakeHost('host b', []), { state: 'running', step: 'cleanup', source: { id: ID, image: 'x', imageId: 'y', ports: [] } });
    await assert.rejects(cleanup(ctx), /container not known/);
    assert.ok(!source.calls.some((c) => c.includes('rm')));
  });

  it("rollback's clearing of the destination finishes a half-removed copy there too", async () => {
    const dest = fakeHost('host b', [{ code: 125, stdout: '', stderr: HALF_REMOVED }, null]);
    assert.deepEqual(await clearDestination(dest.podman, 'web', ID, 'b'), { removed: true, stuck: undefined });
    assert.ok(dest.calls.some((c) => c.join(' ').includes(`rm --force --time 0 ${ID}`)));
  });
});
