import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FerryClient } from '../../src/client';
import { containerState, onHost, readCounter, removeContainers, runCounter, startWorkers, stopWorkers, uid, WorkerProc } from '../support/bed';
import { archiveKeyOnHosts } from '../support/archiveKey';
import { cleanHosts, clientFor, counterAt, faultConfig, FERRY_BIN, filesIn, holdQueue, hostFile, rewrite, Watch } from '../support/faults';

/**
 * archive.encryption on: what lies on the disks between checkpoint and restore is
 * ciphertext, the migration itself is unchanged for the user, and a host holding another
 * key stops the migration before anything is frozen.
 */
describe('encrypted archives (archive.encryption aes-256-gcm)', function () {
  this.timeout(240_000);
  let cfg: ReturnType<typeof faultConfig>;
  let workers: WorkerProc[] = [];
  let client: FerryClient;
  let key: { path: string; remove(): void };
  let stray: { remove(): void } | undefined;
  const name = `enc-${uid()}`;

  before(async () => {
    const base = faultConfig();
    key = archiveKeyOnHosts(base.prefix, ['a', 'b']);
    // Host c holds a different key: the wrong-key case below.
    stray = archiveKeyOnHosts(base.prefix, ['c'], randomBytes(32));
    const keyFile = key.path;
    cfg = rewrite(base, (c) => (c.archive = { encryption: 'aes-256-gcm', keyFile }));
    workers = await startWorkers(['a', 'b'], cfg);
    client = clientFor(cfg);
    runCounter('a', name);
  });

  after(async () => {
    await stopWorkers(workers);
    await client?.close();
    removeContainers([name]);
    cleanHosts([name], cfg.workDir);
    key?.remove();
    stray?.remove();
  });

  it('stores only ciphertext on both hosts, and the container still moves with its memory', async () => {
    const before = await counterAt('a', name);
    // Restore runs on b's queue: holding it from the start (nothing before restore runs on b)
    // leaves the archive at rest on both hosts, however fast checkpoint and transfer are.
    const hold = await holdQueue(cfg, 'b');
    let watch: Watch;
    try {
      const rec0 = await client.migrate({ container: name, from: 'a', to: 'b', probe: { kind: 'exec', argv: ['cat', '/tmp/count'] } });
      watch = new Watch(client, rec0.id);
      await watch.done('transfer');
      const rec = await client.get(rec0.id);
      const archive = rec?.archive;
      assert.ok(archive?.encryption, `record says the archive is encrypted: ${JSON.stringify(archive)}`);
      assert.match(archive.file, /\.tar\.zst\.enc$/);
      // Besides the archive, the source keeps its frozen-container marker until cleanup (no memory in it).
      assert.deepEqual(
        filesIn('a', cfg.workDir).filter((f) => !f.endsWith('.frozen')),
        [archive.file],
        'only the encrypted archive on a: no plain copy, no part file',
      );
      assert.deepEqual(filesIn('b', cfg.workDir), [archive.file], 'only the encrypted archive on b');
      for (const h of ['a', 'b']) {
        const bytes: Buffer = readFileSync(hostFile(h, join(cfg.workDir, archive.file)));
        assert.equal(bytes.subarray(0, 8).toString('latin1'), 'FERRYAE1', `${h}: Ferry's encrypted format`);
        assert.equal(bytes.includes(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), false, `${h}: no zstd frame anywhere, so no compressed plain data`);
      }
      // What an operator would do with a kept archive: decrypt it with the shared key.
      const out = join(cfg.workDir, 'by-hand.tar.zst');
      const dec = onHost('a', [process.execPath, FERRY_BIN, '--config', cfg.file, 'archive', 'decrypt', join(cfg.workDir, archive.file), out]);
      assert.equal(dec.code, 0, dec.stderr);
      const list = onHost('a', ['sh', '-c', 'zstd -dc -- "$1" | tar -t | head -50', 'list', out]);
      assert.match(list.stdout, /^checkpoint\//m, 'the decrypted file is the podman checkpoint archive');
      onHost('a', ['rm', '-f', '--', out]);
    } finally {
      await hold.resume();
    }
    const rec = await watch.final;
    assert.equal(rec.state, 'succeeded', rec.error);
    assert.equal(containerState('b', name), 'running');
    assert.equal(containerState('a', name), null, 'source removed');
    const after = readCounter('b', name);
    assert.equal(after.token, before.token, 'same process');
    assert.ok(after.count > before.count, `counter went on: ${before.count} -> ${after.count}`);
    assert.deepEqual(filesIn('a', cfg.workDir), [], 'nothing left on a');
    assert.deepEqual(filesIn('b', cfg.workDir), [], 'nothing left on b: no archive, no plain copy');
  });

  it('refuses a destination with another key before freezing anything', async () => {
    const rec0 = await client.migrate({ container: name, from: 'b', to: 'c', probe: { kind: 'exec', argv: ['cat', '/tmp/count'] } });
    const rec = await new Watch(client, rec0.id).final;
    assert.equal(rec.state, 'failed');
    assert.match(rec.error ?? '', /host c's archive key \/\S+ \(id [0-9a-f]{16}\) differs from this host's \(id [0-9a-f]{16}\)/);
    assert.equal(rec.frozenAt, undefined, 'never frozen');
    assert.equal(containerState('b', name), 'running');
    assert.equal(containerState('c', name), null);
    assert.deepEqual(filesIn('c', cfg.workDir), []);
  });
});
