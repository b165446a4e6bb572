import { isAbsolute } from 'node:path';
import { checkHostName } from '../names';

export interface HostSsh {
  port: number;
  user: string;
  privateKey: string;
  knownHosts: string;
}

export interface HostCapacity {
  containers: number;
  memoryMb: number;
}

export interface HostConfig {
  name: string;
  /** Where the host is reached: SSH, and health probes of the containers it publishes. */
  address: string;
  ssh: HostSsh;
  /** The podman command and its global flags on that host, e.g. ["podman", "--runtime", "runc"]. */
  podman: string[];
  /** Where archives are written; created 0700. */
  workDir: string;
  capacity: HostCapacity;
}

const HOST_KEYS = new Set(['name', 'address', 'ssh', 'podman', 'workDir', 'capacity']);
const SSH_KEYS = new Set(['port', 'user', 'privateKey', 'knownHosts']);
const CAPACITY_KEYS = new Set(['containers', 'memoryMb']);
const DEFAULT_KNOWN_HOSTS = '/root/.ssh/known_hosts';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(where: string, obj: Record<string, unknown>, allowed: Set<string>): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) throw new Error(`${where}.${key}: unknown key (allowed: ${[...allowed].join(', ')})`);
  }
}

function str(where: string, v: unknown, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || v.length === 0) throw new Error(`${where}: must be a non-empty string`);
  if (/[\0\n\r]/.test(v)) throw new Error(`${where}: must not contain NUL or line breaks`);
  return v;
}

function int(where: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new Error(`${where}: must be an integer from ${min} to ${max}`);
  }
  return v;
}

function absPath(where: string, v: unknown, fallback?: string): string {
  const p = str(where, v, fallback);
  if (!isAbsolute(p)) throw new Error(`${where}: must be an absolute path`);
  return p;
}

/** Validates one inventory entry and fills defaults; throws an Error naming the bad key. */
export function parseHost(raw: unknown, index: number): HostConfig {
  const at = `hosts[${index}]`;
  if (!isRecord(raw)) throw new Error(`${at}: must be an object`);
  let name: string;
  try {
    name = checkHostName(raw.name);
  } catch (e: unknown) {
    throw new Error(`${at}.name: ${(e as Error).message}`);
  }
  const where = `hosts[${index}] (${name})`;
  unknownKeys(where, raw, HOST_KEYS);
  const address = str(`${where}.address`, raw.address);
  if (/\s/.test(address)) throw new Error(`${where}.address: must not contain white space`);
  const sshRaw = raw.ssh ?? {};
  if (!isRecord(sshRaw)) throw new Error(`${where}.ssh: must be an object`);
  unknownKeys(`${where}.ssh`, sshRaw, SSH_KEYS);
  const ssh: HostSsh = {
    port: int(`${where}.ssh.port`, sshRaw.port, 22, 1, 65535),
    user: str(`${where}.ssh.user`, sshRaw.user, 'root'),
    privateKey: absPath(`${where}.ssh.privateKey`, sshRaw.privateKey),
    knownHosts: absPath(`${where}.ssh.knownHosts`, sshRaw.knownHosts, DEFAULT_KNOWN_HOSTS),
  };
  const podmanRaw = raw.podman ?? ['podman'];
  if (!Array.isArray(podmanRaw) || podmanRaw.length === 0) throw new Error(`${where}.podman: must be a non-empty array of strings`);
  const podman = podmanRaw.map((p, i) => str(`${where}.podman[${i}]`, p));
  const capRaw = raw.capacity ?? {};
  if (!isRecord(capRaw)) throw new Error(`${where}.capacity: must be an object`);
  unknownKeys(`${where}.capacity`, capRaw, CAPACITY_KEYS);
  return {
    name,
    address,
    ssh,
    podman,
    workDir: absPath(`${where}.workDir`, raw.workDir, '/var/lib/ferry/archives'),
    capacity: {
      containers: int(`${where}.capacity.containers`, capRaw.containers, 50, 0, 100_000),
      memoryMb: int(`${where}.capacity.memoryMb`, capRaw.memoryMb, 0, 0, 1 << 30),
    },
  };
}

export function parseInventory(raw: unknown): HostConfig[] {
  if (!Array.isArray(raw)) throw new Error('hosts: must be an array of host entries');
  const hosts = raw.map((h, i) => parseHost(h, i));
  const seen = new Set<string>();
  for (const h of hosts) {
    if (seen.has(h.name)) throw new Error(`hosts: host name "${h.name}" appears twice`);
    seen.add(h.name);
  }
  return hosts;
}
