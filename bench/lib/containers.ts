import { bed } from '../../test/support/bed';
import { inHost, must, run } from './shell';

let nextPort = 21000 + Math.floor(Math.random() * 2000);
export function freshPort(): number {
  nextPort += 1;
  return nextPort;
}

export async function startHttpd(host: string, name: string, port: number): Promise<void> {
  await must(inHost(host, ['podman', 'run', '-d', '--name', name, '-p', `${port}:80`, bed().image, '/bin/httpd', '-f', '-p', '80', '-h', '/www']));
}

/**
 * httpd (for the health probe and the downtime poller) plus memhog holding `mib` MiB. The
 * memhog binary is bind-mounted from the repository, which every bed host sees: declared
 * shared, so Ferry's preflight checks that and lets it move.
 */
export async function startMemhog(host: string, name: string, port: number, memhog: string, mib: number): Promise<void> {
  await must(
    inHost(host, ['podman', 'run', '-d', '--name', name, '-p', `${port}:80`, '-v', `${memhog}:/memhog:ro`, '--label', 'ferry.shared-mounts=/memhog', bed().image, 'sh', '-c', `/memhog ${mib} 10 & exec /bin/httpd -f -p 80 -h /www`]),
  );
}

export async function removeEverywhere(names: string[]): Promise<void> {
  for (const h of bed().hosts) for (const n of names) await run(inHost(h.name, ['podman', 'rm', '-f', '-t', '0', n]));
}
