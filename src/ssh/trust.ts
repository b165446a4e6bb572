import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { Client } from 'ssh2';
import type { HostConfig } from '../config/hosts';
import { SshError } from '../errors';
import { coerceError } from '../errors/coerceError';
import { knownHostsName, parseKnownHosts, verifyHostKey } from './knownHosts';

export interface PresentedKey {
  type: string;
  base64: string;
  /** As OpenSSH prints it: SHA256:<base64 without padding>. */
  fingerprint: string;
  /** What known_hosts says about it now. */
  status: 'trusted' | 'unknown' | 'changed' | 'revoked';
}

function keyType(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('ascii');
}

/** Asks the host for its key without authenticating, and says how it compares with known_hosts. */
export async function fetchHostKey(host: HostConfig, timeoutMs: number): Promise<PresentedKey> {
  const blob = await new Promise<Buffer>((resolve, reject) => {
    const c = new Client();
    let key: Buffer | undefined;
    c.on('error', (e) => {
      if (key) resolve(key);
      else reject(new SshError(host.name, 'unreachable', `host ${host.name} (${host.address}:${host.ssh.port}): ${coerceError(e).message}`, e));
    });
    c.connect({
      host: host.address,
      port: host.ssh.port,
      username: host.ssh.user,
      readyTimeout: timeoutMs,
      // Refusing here ends the handshake: the key is all we came for.
      hostVerifier: (k: Buffer) => {
        key = k;
        return false;
      },
    });
  });
  let text = '';
  try {
    text = await readFile(host.ssh.knownHosts, 'utf8');
  } catch {
    // No file yet: the key is unknown.
  }
  const verdict = verifyHostKey(parseKnownHosts(text), knownHostsName(host.address, host.ssh.port), blob);
  return {
    type: keyType(blob),
    base64: blob.toString('base64'),
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    status: verdict.ok ? 'trusted' : verdict.reason,
  };
}

/** Adds the key to known_hosts: the explicit operator action that trusting a new host takes. */
export async function trustHostKey(host: HostConfig, key: PresentedKey): Promise<void> {
  await appendFile(host.ssh.knownHosts, `${knownHostsName(host.address, host.ssh.port)} ${key.type} ${key.base64}\n`, { mode: 0o600 });
}
