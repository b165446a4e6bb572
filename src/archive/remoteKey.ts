import type { CommandRunner } from '../exec/runner';
import { ArchiveCryptoError } from '../errors/ArchiveCryptoError';
import type { ArchiveKey } from './key';

/**
 * Preflight: the destination must hold the same archive key as this host, or it could not
 * decrypt what is about to be frozen and sent. Compared by key id (see key.ts), so the
 * key itself never crosses the wire; the mode is checked there as the worker will.
 */
export async function checkRemoteArchiveKey(runner: CommandRunner, host: string, local: ArchiveKey): Promise<void> {
  const argv = ['sh', '-c', 'stat -c "mode %a size %s" -- "$1" && sha256sum -- "$1"', 'ferry-key', local.path];
  const res = await runner.run(argv);
  if (res.code !== 0) {
    throw new ArchiveCryptoError(`host ${host} has no readable archive key at ${local.path} (${res.stderr.trim() || `exit ${res.code}`}); copy this host's key there (mode 0600)`);
  }
  const lines = res.stdout.split('\n');
  const modeLine = /^mode ([0-7]+) size (\d+)$/.exec(lines.find((l) => l.startsWith('mode ')) ?? '');
  const id = lines
    .map((l) => /^([0-9a-f]{64}) /.exec(l)?.[1])
    .find((h) => h !== undefined)
    ?.slice(0, 16);
  if (modeLine && (parseInt(modeLine[1] ?? '0', 8) & 0o077) !== 0) {
    throw new ArchiveCryptoError(`the archive key ${local.path} on host ${host} has mode ${modeLine[1]}: readable by others; run \`chmod 600 ${local.path}\` there`);
  }
  if (id !== local.id) {
    throw new ArchiveCryptoError(`host ${host}'s archive key ${local.path} (id ${id ?? 'unknown'}) differs from this host's (id ${local.id}); every host needs the same key file`);
  }
}
