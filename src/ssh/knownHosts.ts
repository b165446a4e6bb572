import { createHmac } from 'node:crypto';

export interface KnownHostEntry {
  patterns: string[];
  keyType: string;
  key: string;
  revoked: boolean;
}

/** Parses an OpenSSH known_hosts file (plain and hashed host fields). */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let revoked = false;
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') {
      revoked = parts[0] === '@revoked';
      if (!revoked) continue; // certificate authorities are not supported; ignore rather than trust
      parts.shift();
    }
    if (parts.length < 3) continue;
    entries.push({ patterns: parts[0].split(','), keyType: parts[1], key: parts[2], revoked });
  }
  return entries;
}

/** The name a host is filed under in known_hosts: "addr", or "[addr]:port" off port 22. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

function matchesPattern(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  if (pattern.includes('*') || pattern.includes('?')) {
    const re = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    return re.test(name);
  }
  return pattern === name;
}

export type HostKeyVerdict = { ok: true } | { ok: false; reason: 'unknown' | 'changed' | 'revoked' };

/** Judges a presented host key (the raw key blob) against known_hosts entries. */
export function verifyHostKey(entries: KnownHostEntry[], name: string, keyBlob: Buffer): HostKeyVerdict {
  const presented = keyBlob.toString('base64');
  const forHost = entries.filter((e) => {
    const negated = e.patterns.some((p) => p.startsWith('!') && matchesPattern(p.slice(1), name));
    return !negated && e.patterns.some((p) => !p.startsWith('!') && matchesPattern(p, name));
  });
  if (forHost.some((e) => e.revoked && e.key === presented)) return { ok: false, reason: 'revoked' };
  if (forHost.some((e) => !e.revoked && e.key === presented)) return { ok: true };
  return { ok: false, reason: forHost.some((e) => !e.revoked) ? 'changed' : 'unknown' };
}
