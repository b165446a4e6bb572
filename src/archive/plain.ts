import { createReadStream, createWriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FerryConfig } from '../config/load';
import type { ArchiveInfo } from '../engine/model';
import { StepError } from '../errors';
import { coerceError } from '../errors/coerceError';
import { ensurePrivateDir, removeFile } from '../steps/files';
import { decryptStream } from './cipher';
import { loadArchiveKey } from './key';

/** Where the plain copy of an encrypted archive lives while podman reads it. */
export function plainArchivePath(archivePath: string, config: FerryConfig): string {
  return join(config.archive.plainDir || dirname(archivePath), `${basename(archivePath).replace(/\.enc$/, '')}.plain`);
}

/** Decrypts `archivePath` (authenticated in full) to `out`, mode 0600. */
export async function decryptArchiveFile(archivePath: string, out: string, keyFile: string): Promise<void> {
  const key = await loadArchiveKey(keyFile);
  await ensurePrivateDir(dirname(out));
  try {
    await pipeline(createReadStream(archivePath, { highWaterMark: 1 << 20 }), decryptStream(key, `archive ${archivePath}`), createWriteStream(out, { mode: 0o600, flags: 'w' }));
  } catch (e: unknown) {
    await removeFile(out);
    const err = coerceError(e);
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new StepError(`cannot decrypt archive ${archivePath}: no space left for its plain copy in ${dirname(out)}`, { code: 'PLAIN_DIR_FULL', permanent: true, cause: err });
    }
    throw err;
  }
}

/**
 * Runs `use` with a path podman can import: the archive itself, or for an encrypted one a
 * decrypted copy that exists only for the duration of `use`. podman reads the file more
 * than once (measured: three opens), so a pipe cannot spare the copy; `archive.plainDir`
 * on a tmpfs keeps it off disk. A copy left by a killed worker is overwritten by the next
 * attempt and removed by cleanup and rollback.
 */
export async function withImportableArchive<T>(archivePath: string, archive: ArchiveInfo, config: FerryConfig, use: (path: string) => Promise<T>): Promise<T> {
  if (!archive.encryption) return use(archivePath);
  const plain = plainArchivePath(archivePath, config);
  await decryptArchiveFile(archivePath, plain, config.archive.keyFile);
  try {
    return await use(plain);
  } finally {
    await removeFile(plain);
  }
}
