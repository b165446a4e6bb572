import type { Command } from 'commander';
import type { CliContext } from '../context';
import { lazy } from './lazy';

/** Key management and the by-hand recovery path for encrypted archives (docs/security.md). */
export function registerArchive(program: Command, ctx: CliContext): void {
  const archive = program.command('archive').description('archive encryption: make a key, decrypt an archive by hand');
  archive
    .command('keygen')
    .description('write a new archive key (32 random bytes, mode 0600); copy the same file to every host')
    .argument('<path>', 'where to write the key; never overwritten')
    .action(lazy(ctx, async () => (await import('../actions/archive')).keygen));
  archive
    .command('decrypt')
    .description('decrypt an encrypted checkpoint archive (the path a needs-attention message names) for `podman container restore --import`')
    .argument('<archive>', 'the encrypted archive (*.enc)')
    .argument('<out>', 'where to write the plain archive (must not exist); delete it once restored: it holds the process memory')
    .option('--key <file>', 'archive key file (default: archive.keyFile from the config)')
    .action(lazy(ctx, async () => (await import('../actions/archive')).decrypt));
}
