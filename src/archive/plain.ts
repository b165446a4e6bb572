import { createReadStream, createWriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { HostFiles } from '../engine/files';
import type { ArchiveInfo } from '../engine/model';
import { StepError } from '../errors';
import { coerceError } from '../errors/coerceError';
import { ensurePrivateDir, removeFile } from './localFiles';
import { decryptStream } from './cipher';
import { loadArchiveKey } from './key';

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
export async function withImportableArchive<T>(files: Pick<HostFiles, 'archive' | 'plain'>, archive: ArchiveInfo, keyFile: string, use: (path: string) => Promise<T>): Promise<T> {
  if (!archive.encryption) return use(files.archive);
  await decryptArchiveFile(files.archive, files.plain, keyFile);
  try {
    return await use(files.plain);
  } finally {
    await removeFile(files.plain);
  }
}
