import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFrozenMarker, writeFrozenMarker } from '../../src/archive/frozenMarker';
import { loadConfig } from '../../src/config/load';
import { recoverFrozen } from '../../src/steps/frozenRecovery';
import { fakeHost, inspectJson } from '../support/fakePodman';

const ID = 'f'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'ferry-frozen-test-'));

describe('recoverFrozen: a container this host froze for a migration whose record forgot it', () => {
  it('running on the destination: the marker stays, the only proof of the freeze until the record has it', async () => {
    const file = join(dir, 'ferry.json');
    writeFileSync(file, JSON.stringify({ hosts: [{ name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' } }] }));
    const marker = { migrationId: 'm-test1-0123abcd', container: 'web', containerId: ID, from: 'a', to: 'b', at: Date.now() - 5000 };
    await writeFrozenMarker(dir, marker);
    const source = fakeHost('host a', [{ code: 0, stdout: inspectJson(ID, false), stderr: '' }]);
    const dest = fakeHost('host b', [{ code: 0, stdout: inspectJson(ID, true), stderr: '' }]);
    const verdict = await recoverFrozen(marker, { config: loadConfig({ file, env: {} }), workDir: dir, local: source.podman, localRunner: source.runner, destination: () => dest.podman });
    assert.equal(verdict.kind, 'on-destination');
    assert.equal((await readFrozenMarker(dir, marker.migrationId))?.containerId, ID, 'the marker is still there');
    assert.ok(!source.calls.some((c) => c.includes('restore')), 'nothing restored on the source');
  });

  it('restored here by an attempt superseded meanwhile: the marker stays, and the current attempt finds it stale', async () => {
    const file = join(dir, 'ferry.json');
    writeFileSync(file, JSON.stringify({ hosts: [{ name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' } }] }));
    const marker = { migrationId: 'm-test2-0123abcd', container: 'web', containerId: ID, from: 'a', to: 'b', at: Date.now() - 5000 };
    await writeFrozenMarker(dir, marker);
    const source = fakeHost('host a', [{ code: 0, stdout: inspectJson(ID, false), stderr: '' }]);
    const dest = fakeHost('host b', [null]);
    let fences = 0;
    const fence = (): Promise<void> => (++fences > 1 ? Promise.reject(new Error('superseded')) : Promise.resolve());
    await assert.rejects(recoverFrozen(marker, { config: loadConfig({ file, env: {} }), workDir: dir, local: source.podman, localRunner: source.runner, destination: () => dest.podman, fence }), /superseded/);
    assert.ok(
      source.calls.some((c) => c.join(' ').includes('container restore')),
      'the restore ran (it only stops at its own time limit)',
    );
    assert.equal((await readFrozenMarker(dir, marker.migrationId))?.containerId, ID, 'the marker was left to whoever holds the migration now');
  });
});
