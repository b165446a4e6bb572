import type { Command } from 'commander';
import { open } from 'node:fs/promises';
import type { CliContext } from '../context';
import { isEncryptedArchiveHeader, HEADER_BYTES } from '../../archive/cipher';
import { generateArchiveKey } from '../../archive/key';
import { decryptArchiveFile } from '../../archive/plain';
import { fileSize } from '../../archive/localFiles';
import { FerryError } from '../../errors';

/** Key management and the by-hand recovery path for encrypted archives (docs/security.md). */
export function registerArchive(program: Command, ctx: CliContext): void {
  const archive = program.command('archive').description('archive encryption: make a key, decrypt an archive by hand');
  archive
    .command('keygen')
    .description('write a new archive key (32 random bytes, mode 0600); copy the same file to every host')
    .argument('<path>', 'where to write the key; never overwritten')
    .action(async (path: string) => {
      const key = await generateArchiveKey(path);
      ctx.io.out(`wrote archive key ${key.path} (id ${key.id}); copy it to the same path on every host, mode 0600`);
    });
  archive
    .command('decrypt')
    .description('decrypt an encrypted checkpoint archive (the path a needs-attention message names) for `podman container restore --import`')
    .argument('<archive>', 'the encrypted archive (*.enc)')
    .argument('<out>', 'where to write the plain archive (must not exist); delete it once restored: it holds the process memory')
    .option('--key <file>', 'archive key file (default: archive.keyFile from the config)')
    .action(async (input: string, out: string, opts: { key?: string }, cmd: Command) => {
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
    });
}
