import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encryptStream } from '../../src/archive/cipher';
import { generateArchiveKey } from '../../src/archive/key';
import { withImportableArchive } from '../../src/archive/plain';
import type { ArchiveInfo } from '../../src/engine/model';

/**
 * The decrypted copy podman imports (finding 23 in docs/reliability.md): a stopped attempt's
 * decryption stops with it, and two attempts never share one file, so the bytes a restore
 * hands podman are exactly the archive's.
 */
describe('withImportableArchive: one decrypted copy per attempt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-plain-test-'));
  const keyFile = join(dir, 'archive.key');
  const files = { archive: join(dir, 'm.tar.enc'), plain: join(dir, 'plain', 'm.tar.plain') };
  const archive = { file: 'm.tar.enc', sha256: '', bytes: 0, compression: 'none', encryption: { cipher: 'x', keyId: 'y' } } as unknown as ArchiveInfo;
  const clear = randomBytes(3 << 20);

  before(async () => {
    const key = await generateArchiveKey(keyFile);
    await pipeline(Readable.from([clear]), encryptStream(key), createWriteStream(files.archive));
  });

  it('an earlier attempt that ends later removes only its own copy, never the current one', async () => {
    let releaseSecond: () => void = () => undefined;
    let secondIn: () => void = () => undefined;
    const secondInUse = new Promise<void>((r) => (secondIn = r));
    let second: Promise<Buffer> | undefined;
    await withImportableArchive(files, archive, keyFile, async (p) => {
      assert.ok(readFileSync(p).equals(clear));
      second = withImportableArchive(files, archive, keyFile, async (q) => {
        secondIn();
        await new Promise<void>((r) => (releaseSecond = r));
        return readFileSync(q);
      });
      await secondInUse;
    });
    assert.ok(existsSync(files.plain), "the first attempt's end left the second one's copy in place");
    releaseSecond();
    assert.ok((await second)?.equals(clear), 'the second attempt imports exactly the archive');
    assert.ok(!existsSync(files.plain), 'and removes its copy when done');
  });

  it('a stopped attempt stops decrypting and leaves no copy', async () => {
    const stop = new AbortController();
    stop.abort(new Error('attempt stopped'));
    let used = false;
    await assert.rejects(
      withImportableArchive(files, archive, keyFile, () => Promise.resolve((used = true)), stop.signal),
      (e: Error) => /abort|stopped/i.test(`${e.name} ${e.message}`),
    );
    assert.ok(!used, 'podman is never handed a partial copy');
    assert.ok(!existsSync(files.plain));
  });
});
