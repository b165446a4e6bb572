import { createReadStream } from 'node:fs';
import { FileHandle, open, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { HostFiles } from '../engine/files';
import type { ArchiveInfo } from '../engine/model';
import { StepError } from '../errors';
import { coerceError } from '../errors/coerceError';
import { ensurePrivateDir, removeFile } from './localFiles';
import { decryptStream } from './cipher';
import { loadArchiveKey } from './key';

/** Decrypts `archivePath` (authenticated in full) into a new file `out`, mode 0600; `out` must not exist. */
export async function decryptArchiveFile(archivePath: string, out: string, keyFile: string): Promise<void> {
  const copy = await decryptToNewFile(archivePath, out, keyFile);
  await copy.fh.close();
}

/**
 * The decrypted copy, its file still open: while it is, its inode cannot be freed and given to
 * another file, so `ino` tells this copy from one a later attempt made under the same name.
 * `signal` stops the decryption and removes what it wrote.
 */
async function decryptToNewFile(archivePath: string, out: string, keyFile: string, signal?: AbortSignal): Promise<{ fh: FileHandle; ino: number }> {
  const key = await loadArchiveKey(keyFile);
  await ensurePrivateDir(dirname(out));
  const fh = await open(out, 'wx', 0o600);
  const ino = (await fh.stat()).ino;
  try {
    await pipeline(createReadStream(archivePath, { highWaterMark: 1 << 20 }), decryptStream(key, `archive ${archivePath}`), intoHandle(fh), { signal });
    return { fh, ino };
  } catch (e: unknown) {
    await removeOwnCopy(out, ino);
    await fh.close().catch(() => undefined);
    const err = coerceError(e);
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new StepError(`cannot decrypt archive ${archivePath}: no space left for its plain copy in ${dirname(out)}`, { code: 'PLAIN_DIR_FULL', permanent: true, cause: err });
    }
    throw err;
  }
}

/** Writes to `fh` in order and leaves it open (a stream from `fh.createWriteStream` would close it). */
function intoHandle(fh: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      void (async () => {
        // A write may take fewer bytes than given.
        for (let at = 0; at < chunk.length;) at += (await fh.write(chunk, at, chunk.length - at)).bytesWritten;
      })().then(() => done(), done);
    },
  });
}

/** Removes `path` only if it is still the file with inode `ino` (held open by the caller). */
async function removeOwnCopy(path: string, ino: number): Promise<void> {
  const st = await stat(path).catch(() => null);
  if (st?.ino === ino) await unlink(path).catch(() => undefined);
}

/**
 * Runs `use` with a path podman can import: the archive itself, or for an encrypted one a
 * decrypted copy that exists only for the duration of `use`. podman reads the file more
 * than once (measured: three opens), so a pipe cannot spare the copy; `archive.plainDir`
 * on a tmpfs keeps it off disk. A copy left by a killed worker is removed by the next
 * attempt and by cleanup and rollback.
 *
 * An attempt that was stopped may still be writing its copy for a moment (`signal` ends it):
 * each attempt unlinks the path and creates a new file, so an old attempt writes on into its
 * own unlinked inode, never into the bytes the current one hands podman, and it removes the
 * path only while it still names its own copy (the inode, held open until then).
 */
export async function withImportableArchive<T>(files: Pick<HostFiles, 'archive' | 'plain'>, archive: ArchiveInfo, keyFile: string, use: (path: string) => Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!archive.encryption) return use(files.archive);
  await removeFile(files.plain);
  const copy = await decryptToNewFile(files.archive, files.plain, keyFile, signal);
  try {
    return await use(files.plain);
  } finally {
    await removeOwnCopy(files.plain, copy.ino);
    await copy.fh.close();
  }
}
