import type { Command } from 'commander';
import { open } from 'node:fs/promises';
import type { CliContext } from '../context';
import { isEncryptedArchiveHeader, HEADER_BYTES } from '../../archive/cipher';
import { generateArchiveKey } from '../../archive/key';
import { decryptArchiveFile } from '../../archive/plain';
import { fileSize } from '../../archive/localFiles';
import { FerryError } from '../../errors';

export async function keygen(ctx: CliContext, path: string): Promise<void> {
  const key = await generateArchiveKey(path);
  ctx.io.out(`wrote archive key ${key.path} (id ${key.id}); copy it to the same path on every host, mode 0600`);
}

export async function decrypt(ctx: CliContext, input: string, out: string, opts: { key?: string }, cmd: Command): Promise<void> {
  if ((await fileSize(out)) !== null) throw new FerryError(`${out} already exists; not overwriting it`, { code: 'EXISTS', permanent: true });
  const head = Buffer.alloc(HEADER_BYTES);
  const f = await open(input, 'r').catch((e: unknown) => {
    throw new FerryError(`cannot open archive ${input}: ${(e as Error).message}`, { code: 'NOT_FOUND', permanent: true, cause: e });
  });
  try {
    await f.read(head, 0, HEADER_BYTES, 0);
  } finally {
    await f.close();
  }
  if (!isEncryptedArchiveHeader(head)) throw new FerryError(`${input} is not an encrypted Ferry archive; podman can import it as it is`, { code: 'NOT_ENCRYPTED', permanent: true });
  const keyFile = opts.key ?? ctx.configFrom(cmd).archive.keyFile;
  await decryptArchiveFile(input, out, keyFile);
  ctx.io.out(`decrypted ${input} to ${out} (mode 0600); now: podman container restore --import ${out}, then delete ${out}`);
}
