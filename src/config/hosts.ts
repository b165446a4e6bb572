import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors';
import { checkHostName } from '../names';
import { describeProblems, intIn, parseOr, pathText, Problem, strictObject, viaCheck } from '../validation';

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

const DEFAULT_KNOWN_HOSTS = '/root/.ssh/known_hosts';
const NON_EMPTY = 'must be a non-empty string';

const text = z
  .string({ error: NON_EMPTY })
  .min(1, { error: NON_EMPTY, abort: true })
  .regex(/^[^\0\n\r]*$/, { error: 'must not contain NUL or line breaks' });
const absPath = text.refine(isAbsolute, { error: 'must be an absolute path' });
const hostName = z.unknown().transform(viaCheck(checkHostName));

const hostSchema = strictObject({
  name: hostName,
  address: text.regex(/^\S*$/, { error: 'must not contain white space' }),
  ssh: strictObject(
    {
      port: intIn(1, 65535).default(22),
      user: text.default('root'),
      privateKey: absPath,
      knownHosts: absPath.default(DEFAULT_KNOWN_HOSTS),
    },
    'must be an object with at least privateKey',
  ),
  podman: z.array(text, { error: 'must be a non-empty array of strings' }).min(1, { error: 'must be a non-empty array of strings' }).default(['podman']),
  workDir: absPath.default('/var/lib/ferry/archives'),
  capacity: strictObject({
    containers: intIn(0, 100_000).default(50),
    memoryMb: intIn(0, 1 << 30).default(0),
  }).prefault({}),
});

const inventorySchema = z.array(hostSchema, { error: 'must be an array of host entries' }).superRefine((hosts, ctx) => {
  hosts.forEach((h, i) => {
    const first = hosts.findIndex((o) => o.name === h.name);
    if (first < i) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `appears twice (hosts[${first}] has it too)`, input: h.name });
  });
});

/**
 * Validates the inventory and fills defaults; the error names each bad entry by index and,
 * when it has a valid one, by name: "hosts[0] (a).ssh.port: must be an integer from 1 to 65535, got 70000".
 */
export function parseInventory(raw: unknown): HostConfig[] {
  return parseOr(inventorySchema, raw, (error) => {
    const entry = (i: PropertyKey): string => {
      const name = Array.isArray(raw) && typeof i === 'number' ? hostName.safeParse((raw[i] as { name?: unknown } | null)?.name) : undefined;
      return `hosts[${String(i)}]${name?.success ? ` (${name.data})` : ''}`;
    };
    const render = (p: Problem): string => {
      if (!p.path.length) return `hosts: ${p.text}`;
      const [i, ...rest] = p.path;
      return `${entry(i)}${rest.length ? `.${pathText(rest)}` : ''}: ${p.text}`;
    };
    return new ConfigError(describeProblems(error, render));
  });
}
