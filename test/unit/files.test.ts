import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir } from '../../src/archive/localFiles';
import type { FerryConfig } from '../../src/config/load';
import { migrationFiles, PLAIN_SUBDIR } from '../../src/engine/files';
import type { MigrationRecord } from '../../src/engine/model';

const config = {
  hosts: [
    { name: 'a', workDir: '/var/lib/ferry/archives' },
    { name: 'b', workDir: '/srv/ferry' },
  ],
  checkpoint: { compression: 'zstd' },
  archive: { encryption: 'none', plainDir: '' },
} as unknown as FerryConfig;

describe('where a migration keeps its files', () => {
  const rec = { id: 'm-abc123-0123abcd', from: 'a', to: 'b' };

  it('derives every path from the id and the inventory, never from a path in the record', () => {
    const hostile = { ...rec, archive: { file: '../../../../etc/shadow', compression: 'none', encryption: undefined } } as unknown as MigrationRecord;
    const f = migrationFiles(hostile, config);
    assert.equal(f.name, 'm-abc123-0123abcd.tar');
    assert.equal(f.source.archive, '/var/lib/ferry/archives/m-abc123-0123abcd.tar');
    assert.equal(f.destination.archive, '/srv/ferry/m-abc123-0123abcd.tar');
    for (const p of [f.source.part, f.source.fifo, f.destination.part, f.destination.plain]) assert.ok(!p.includes('..'), p);
  });

  it('refuses an id that is not a migration id', () => {
    assert.throws(() => migrationFiles({ ...rec, id: '../../etc/passwd' }, config), /not a Ferry migration id/);
  });

  it('keeps plain copies in a folder of its own inside plainDir', () => {
    const f = migrationFiles(rec, { ...config, archive: { ...config.archive, plainDir: '/dev/shm' } });
    assert.equal(f.destination.plain, `/dev/shm/${PLAIN_SUBDIR}/m-abc123-0123abcd.tar.zst.plain`);
  });
});

describe('private folders', () => {
  it('creates a missing folder 0700, and refuses a shared one without touching its mode', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ferry-dir-'));
    try {
      const mine = join(base, 'archives');
      await ensurePrivateDir(mine);
      assert.equal(statSync(mine).mode & 0o7777, 0o700);
      const shared = join(base, 'shared');
      await ensurePrivateDir(shared);
      chmodSync(shared, 0o1777);
      await assert.rejects(ensurePrivateDir(shared), /not private to Ferry \(mode 1777/);
      assert.equal(statSync(shared).mode & 0o7777, 0o1777, 'left as it was');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
