import { bed, hostInfo } from '../../test/support/bed';
import { now } from './clock';
import { inHost, must, run } from './shell';

const DIR = '/var/lib/ferry/archives';

function sshOpts(): string[] {
  const b = bed();
  return ['-o', 'BatchMode=yes', '-i', b.ssh.key, '-o', `UserKnownHostsFile=${b.ssh.knownHosts}`];
}

/** The three commands a user types on the source host, one process each, timed each. */
export async function rawMigrate(name: string, from: string, to: string): Promise<{ frozenAt: number; checkpointMs: number; copyMs: number; restoreMs: number; totalMs: number }> {
  const dest = hostInfo(to).address;
  const file = `${DIR}/raw-${name}.tar`;
  await must(inHost(from, ['mkdir', '-p', DIR]));
  const t0 = now();
  await must(inHost(from, ['podman', 'container', 'checkpoint', name, '--export', file]));
  const t1 = now();
  await must(inHost(from, ['scp', '-q', ...sshOpts(), file, `root@${dest}:${file}`]));
  const t2 = now();
  // Same restore flags Ferry uses by default (a fresh IP on the destination), so both do the same work.
  await must(inHost(from, ['ssh', ...sshOpts(), `root@${dest}`, 'podman', 'container', 'restore', '--import', file, '--ignore-static-ip', '--ignore-static-mac']));
  const t3 = now();
  return { frozenAt: t0, checkpointMs: t1 - t0, copyMs: t2 - t1, restoreMs: t3 - t2, totalMs: t3 - t0 };
}

/** What the raw sequence leaves behind, removed untimed. */
export async function rawCleanup(name: string, from: string, to: string): Promise<void> {
  const file = `${DIR}/raw-${name}.tar`;
  await run(inHost(from, ['podman', 'rm', '-f', '-t', '0', name]));
  await run(inHost(from, ['rm', '-f', file]));
  await run(inHost(to, ['rm', '-f', file]));
}

/** The sequential loop a user would write for a drain: one shell, the same three commands per container. */
export function rawLoopScript(names: string[], targets: string[]): string {
  const ssh = sshOpts()
    .map((o) => `'${o}'`)
    .join(' ');
  const lines = names.map((n, i) => {
    const dest = hostInfo(targets[i]).address;
    const f = `${DIR}/raw-${n}.tar`;
    return `podman container checkpoint ${n} --export ${f} && scp -q ${ssh} ${f} root@${dest}:${f} && ssh ${ssh} root@${dest} podman container restore --import ${f} --ignore-static-ip --ignore-static-mac >/dev/null || exit 1`;
  });
  return `set -e\nmkdir -p ${DIR}\n${lines.join('\n')}\n`;
}
