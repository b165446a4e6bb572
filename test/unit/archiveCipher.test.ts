import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { decryptStream, encryptStream, HEADER_BYTES } from '../../src/archive/cipher';
import { archiveKeyId, ArchiveKey, generateArchiveKey, loadArchiveKey } from '../../src/archive/key';
import { ArchiveCryptoError } from '../../src/errors';

function keyOf(bytes = randomBytes(32)): ArchiveKey {
  return { path: '/test/key', bytes, id: archiveKeyId(bytes) };
}

/** Feeds `chunks` through `t` and returns everything it produced. */
async function run(t: NodeJS.ReadWriteStream, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    t,
    new Writable({
      write(c: Buffer, _e, done) {
        out.push(c);
        done();
      },
    }),
  );
  return Buffer.concat(out);
}

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    parts.push(buf.subarray(at, p));
    at = p;
  }
  parts.push(buf.subarray(at));
  return parts.filter((p) => p.length > 0);
}

describe('archive encryption (AES-256-GCM stream format)', () => {
  it('round-trips any data, however the streams are chunked', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), fc.array(fc.nat(6000), { maxLength: 8 }), fc.array(fc.nat(6000), { maxLength: 8 }), async (data, cutsIn, cutsOut) => {
        const key = keyOf();
        const plain = Buffer.from(data);
        const sealed = await run(encryptStream(key), split(plain, cutsIn));
        assert.equal(sealed.length, plain.length + HEADER_BYTES + 16);
        const opened = await run(decryptStream(key, 'test archive'), split(sealed, cutsOut));
        assert.deepEqual(opened, plain);
      }),
      { numRuns: 150 },
    );
  });

  it('never writes the plain bytes and uses a fresh nonce per archive', async () => {
    const key = keyOf();
    const plain = Buffer.from('counter=42 token=secret-memory-page '.repeat(100));
    const a = await run(encryptStream(key), [plain]);
    const b = await run(encryptStream(key), [plain]);
    assert.equal(a.includes(Buffer.from('secret-memory-page')), false);
    assert.notDeepEqual(a, b);
  });

  it('refuses any modified byte: header, body or tag', async () => {
    const key = keyOf();
    const sealed = await run(encryptStream(key), [randomBytes(3000)]);
    for (const at of [0, 9, HEADER_BYTES - 1, HEADER_BYTES + 5, sealed.length - 20, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] = (bad[at] ?? 0) ^ 0xff;
      await assert.rejects(run(decryptStream(key, 'x'), [bad]), ArchiveCryptoError, `byte ${at}`);
    }
  });

  it('refuses a truncated archive and names a wrong key by id', async () => {
    const key = keyOf();
    const sealed = await run(encryptStream(key), [randomBytes(1000)]);
    await assert.rejects(run(decryptStream(key, 'archive X'), [sealed.subarray(0, sealed.length - 1)]), /failed authentication/);
    await assert.rejects(run(decryptStream(key, 'archive X'), [sealed.subarray(0, 30)]), /truncated/);
    const other = keyOf();
    await assert.rejects(run(decryptStream(other, 'archive X'), [sealed]), new RegExp(`encrypted with archive key ${key.id}, but this host's key /test/key is ${other.id}`));
    await assert.rejects(run(decryptStream(key, 'archive X'), [Buffer.from('not encrypted at all, a plain tar file....')]), /not an encrypted Ferry archive/);
  });
});

describe('archive keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-key-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keygen writes 32 bytes mode 0600 and never overwrites', async () => {
    const p = join(dir, 'k1');
    const k = await generateArchiveKey(p);
    assert.equal((await loadArchiveKey(p)).id, k.id);
    await assert.rejects(generateArchiveKey(p), /already exists/);
  });

  it('refuses a key others can read, of the wrong size, or missing, saying what to do', async () => {
    const open = join(dir, 'k2');
    writeFileSync(open, randomBytes(32));
    chmodSync(open, 0o644);
    await assert.rejects(loadArchiveKey(open), /mode 0644: readable by others; run `chmod 600/);
    const short = join(dir, 'k3');
    writeFileSync(short, 'hunter2\n', { mode: 0o600 });
    await assert.rejects(loadArchiveKey(short), /holds 8 bytes; it must hold exactly 32/);
    await assert.rejects(loadArchiveKey(join(dir, 'nope')), /cannot read the archive key .*ferry archive keygen/);
  });
});
