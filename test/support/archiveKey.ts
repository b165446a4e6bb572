import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { hostFile } from './faults';

/**
 * Puts one archive key at the same path on each host, as an operator copies it (mode 0600),
 * and returns that path and a function removing it again. `bytes` gives a host another key.
 */
export function archiveKeyOnHosts(prefix: string, hosts: string[], bytes: Buffer = randomBytes(32)): { path: string; remove(): void } {
  const path = `/var/lib/ferry/${prefix}.key`;
  for (const h of hosts) writeFileSync(hostFile(h, path), bytes, { mode: 0o600 });
  return { path, remove: () => hosts.forEach((h) => rmSync(hostFile(h, path), { force: true })) };
}
