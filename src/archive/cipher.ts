import { createCipheriv, createDecipheriv, DecipherGCM, randomBytes } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { ArchiveCryptoError } from '../errors/ArchiveCryptoError';
import type { ArchiveKey } from './key';

/**
 * The encrypted archive format, version 1:
 *
 *   "FERRYAE1" (8) | key id (8) | nonce (12) | AES-256-GCM ciphertext | tag (16)
 *
 * The header is authenticated as additional data, so a swapped key id or nonce fails
 * like a modified byte. The key id lets a host say "wrong key" instead of "corrupt".
 * One random nonce per archive: a key encrypts many archives, never twice with one nonce.
 */
export const ARCHIVE_CIPHER = 'aes-256-gcm';
const MAGIC = Buffer.from('FERRYAE1', 'ascii');
const KEY_ID_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES + NONCE_BYTES;
/** GCM with a 96-bit nonce may encrypt at most 2^32 - 2 blocks under it (about 64 GiB). */
const MAX_PLAIN_BYTES = (2 ** 32 - 2) * 16;

export function isEncryptedArchiveHeader(head: Buffer): boolean {
  return head.length >= MAGIC.length && head.subarray(0, MAGIC.length).equals(MAGIC);
}

export function encryptStream(key: ArchiveKey): Transform {
  const nonce = randomBytes(NONCE_BYTES);
  const header = Buffer.concat([MAGIC, Buffer.from(key.id, 'hex'), nonce]);
  const cipher = createCipheriv(ARCHIVE_CIPHER, key.bytes, nonce);
  cipher.setAAD(header);
  let plainBytes = 0;
  let headerSent = false;
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      plainBytes += chunk.length;
      if (plainBytes > MAX_PLAIN_BYTES) {
        done(new ArchiveCryptoError('the checkpoint archive is larger than AES-GCM allows under one nonce (64 GiB); turn archive.encryption off for this container'));
        return;
      }
      const out = cipher.update(chunk);
      if (!headerSent) {
        headerSent = true;
        done(null, Buffer.concat([header, out]));
        return;
      }
      done(null, out);
    },
    flush(done: TransformCallback) {
      const last = cipher.final();
      done(null, Buffer.concat([headerSent ? Buffer.alloc(0) : header, last, cipher.getAuthTag()]));
    },
  });
}

/**
 * The inverse of encryptStream. GCM can only vouch for the data at its end (the tag is the
 * last 16 bytes), so the output must not be used before this stream has finished without
 * an error: callers write it to a file and act on the file only afterwards.
 */
export function decryptStream(key: ArchiveKey, what: string): Transform {
  let head = Buffer.alloc(0);
  let decipher: DecipherGCM | undefined;
  // The last 16 bytes seen so far: they are the tag if the stream ends here.
  let tail = Buffer.alloc(0);
  const start = (h: Buffer): void => {
    if (!isEncryptedArchiveHeader(h)) throw new ArchiveCryptoError(`${what} is not an encrypted Ferry archive (no FERRYAE1 header)`);
    const keyId = h.subarray(MAGIC.length, MAGIC.length + KEY_ID_BYTES).toString('hex');
    if (keyId !== key.id) {
      throw new ArchiveCryptoError(`${what} was encrypted with archive key ${keyId}, but this host's key ${key.path} is ${key.id}; give every host the same key file`);
    }
    decipher = createDecipheriv(ARCHIVE_CIPHER, key.bytes, h.subarray(MAGIC.length + KEY_ID_BYTES, HEADER_BYTES));
    decipher.setAAD(h);
  };
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        let body = chunk;
        if (!decipher) {
          head = Buffer.concat([head, chunk]);
          if (head.length < HEADER_BYTES) {
            done();
            return;
          }
          start(head.subarray(0, HEADER_BYTES));
          body = head.subarray(HEADER_BYTES);
        }
        const d = decipher as DecipherGCM;
        const joined = tail.length > 0 ? Buffer.concat([tail, body]) : body;
        if (joined.length <= TAG_BYTES) {
          tail = Buffer.from(joined);
          done();
          return;
        }
        // Copied: a view would keep the whole chunk alive until the next one.
        tail = Buffer.from(joined.subarray(joined.length - TAG_BYTES));
        done(null, d.update(joined.subarray(0, joined.length - TAG_BYTES)));
      } catch (e: unknown) {
        done(e instanceof Error ? e : new ArchiveCryptoError(String(e)));
      }
    },
    flush(done: TransformCallback) {
      if (!decipher || tail.length < TAG_BYTES) {
        done(new ArchiveCryptoError(`${what} is truncated: it ends before its authentication tag`));
        return;
      }
      try {
        decipher.setAuthTag(tail);
        done(null, decipher.final());
      } catch (e: unknown) {
        done(new ArchiveCryptoError(`${what} failed authentication: it was modified or truncated after encryption; not using it`, e));
      }
    },
  });
}
