import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { ValidationError } from '../errors/ValidationError';

/**
 * Archives hold a process's whole memory: their folder is 0700. Ferry makes it so only for
 * a folder it creates: changing the mode of one that exists (`/tmp`, `/dev/shm`, a mount
 * point) would break it for everyone else, so a folder others can enter is refused instead.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (!st) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    return;
  }
  if (!st.isDirectory()) throw new ValidationError(`${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new ValidationError(
      `${dir} is not private to Ferry (mode ${(st.mode & 0o7777).toString(8)}, owner uid ${st.uid}): archives hold a process's whole memory. Point workDir or archive.plainDir at a folder of Ferry's own (it is created 0700), or \`chmod 700\` this one if it is meant for Ferry alone`,
    );
  }
}

export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
