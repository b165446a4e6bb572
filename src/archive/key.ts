import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { ArchiveCryptoError } from '../errors/ArchiveCryptoError';
import { coerceError } from '../errors/coerceError';

export const ARCHIVE_KEY_BYTES = 32;

export interface ArchiveKey {
  path: string;
  bytes: Buffer;
  /**
   * First 8 bytes of the key file's SHA-256, in hex: names the key in archives and messages
   * without revealing it, and can be computed on a remote host with plain `sha256sum`.
   */
  id: string;
}

export function archiveKeyId(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/**
 * Reads the archive key, refusing one that others could read: whoever reads it can read
 * the memory of every migrated process. Read afresh each time, so a rotated key file is
 * picked up without restarting workers.
 */
export async function loadArchiveKey(path: string): Promise<ArchiveKey> {
  let mode: number;
  let bytes: Buffer;
  try {
    mode = (await stat(path)).mode & 0o777;
    bytes = await readFile(path);
  } catch (e: unknown) {
    throw new ArchiveCryptoError(`cannot read the archive key ${path}: ${coerceError(e).message} (create it with \`ferry archive keygen ${path}\` and copy it to every host)`, e);
  }
  if ((mode & 0o077) !== 0) {
    throw new ArchiveCryptoError(`archive key ${path} has mode ${mode.toString(8).padStart(4, '0')}: readable by others; run \`chmod 600 ${path}\``);
  }
  if (bytes.length !== ARCHIVE_KEY_BYTES) {
    throw new ArchiveCryptoError(`archive key ${path} holds ${bytes.length} bytes; it must hold exactly ${ARCHIVE_KEY_BYTES} random bytes (\`ferry archive keygen ${path}\`)`);
  }
  return { path, bytes, id: archiveKeyId(bytes) };
}

/** Writes a new key, mode 0600; never overwrites one (that would orphan every archive made with it). */
export async function generateArchiveKey(path: string): Promise<ArchiveKey> {
  const bytes = randomBytes(ARCHIVE_KEY_BYTES);
  let file;
  try {
    file = await open(path, 'wx', 0o600);
  } catch (e: unknown) {
    const err = coerceError(e);
    const why = (e as NodeJS.ErrnoException).code === 'EEXIST' ? 'it already exists (remove it first if you really mean to replace it)' : err.message;
    throw new ArchiveCryptoError(`cannot create the archive key ${path}: ${why}`, e);
  }
  try {
    await file.writeFile(bytes);
    await file.chmod(0o600);
  } finally {
    await file.close();
  }
  return { path, bytes, id: archiveKeyId(bytes) };
}
