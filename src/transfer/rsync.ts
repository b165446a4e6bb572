import { posix } from 'node:path';
import type { HostConfig } from '../config/hosts';
import { CommandError, ValidationError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import { CONTROL_CHARS } from '../names';

/** What one rsync run moved. */
export interface RsyncResult {
  /** Bytes rsync sent (its own count: deltas and metadata included). */
  sentBytes: number;
  ms: number;
}

/** rsync splits its --rsh string on spaces and quotes: a path needing either is not given to it. */
const PLAIN_PATH = /^[\w./+-]+$/;

function sshCommand(dest: HostConfig): string {
  const { ssh } = dest;
  for (const p of [ssh.privateKey, ssh.knownHosts]) {
    if (!PLAIN_PATH.test(p)) throw new ValidationError(`ssh path ${p} of host ${dest.name} cannot be given to rsync (use a path of letters, digits and ./+-_)`);
  }
  return ['ssh', '-i', ssh.privateKey, '-p', String(ssh.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${ssh.knownHosts}`, '-o', 'ConnectTimeout=10'].join(' ');
}

/**
 * Makes the folder `to` on host `dest` hold exactly what `from` holds here: files, links,
 * owners by number, modes, ACLs, xattrs, holes; what is gone here is deleted there. Over SSH
 * with the destination's inventory settings (the same key and known_hosts Ferry uses), paths
 * sent to the remote rsync as data, not through its shell (--protect-args).
 */
export async function rsyncTo(runner: CommandRunner, dest: HostConfig, from: string, to: string, timeoutMs: number): Promise<RsyncResult> {
  // --delete into / (an empty mountpoint from a podman that answered oddly) would wipe a host.
  for (const p of [from, to]) {
    if (!posix.isAbsolute(p) || posix.normalize(p).replace(/\/+$/, '') === '' || CONTROL_CHARS.test(p)) throw new ValidationError(`refusing to copy ${JSON.stringify(p)}: not an absolute folder below /`);
  }
  const address = dest.address.includes(':') ? `[${dest.address}]` : dest.address;
  const argv = [
    'rsync',
    '--archive',
    '--hard-links',
    '--acls',
    '--xattrs',
    '--sparse',
    '--numeric-ids',
    '--delete',
    // Size and mtime to the nanosecond: a file written twice within one second, after the
    // copy made while the container ran read it, must still count as changed.
    '--modify-window=-1',
    '--protect-args',
    '--stats',
    '--rsh',
    sshCommand(dest),
    '--',
    `${from.replace(/\/+$/, '')}/`,
    `${dest.ssh.user}@${address}:${to.replace(/\/+$/, '')}/`,
  ];
  const started = Date.now();
  const res = await runner.run(argv, { timeoutMs });
  if (res.code !== 0) throw new CommandError(runner.where, argv, res.code, res.stderr);
  const sent = /Total bytes sent:\s*([\d,]+)/.exec(res.stdout)?.[1];
  return { sentBytes: sent ? Number(sent.replace(/,/g, '')) : 0, ms: Date.now() - started };
}
