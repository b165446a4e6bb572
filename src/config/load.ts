import convict from 'convict';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors';
import { coerceError } from '../errors/coerceError';
import { buildSchema } from './schema';
import { HostConfig, parseInventory } from './hosts';
import type { StepName } from '../engine/steps';
import type { MemoryCopy } from '../engine/model';
import { HooksConfig, parseCutoverHooks } from '../hooks/config';

export type { StepName };

export interface FerryConfig {
  redis: {
    url: string;
    username: string;
    password: string;
    prefix: string;
    tls: { enabled: boolean; ca: string; cert: string; key: string; rejectUnauthorized: boolean };
    sentinel: { name: string; sentinels: string[]; password: string };
    cluster: { nodes: string[] };
    requireNoEviction: boolean;
  };
  hosts: HostConfig[];
  retry: { attempts: Record<StepName, number>; backoffMs: number };
  timeouts: { step: Record<StepName, number>; sshConnectMs: number; frozenMs: number };
  checkpoint: {
    compression: 'none' | 'gzip' | 'zstd';
    memoryCopy: MemoryCopy;
    postCopyDeadlineSeconds: number;
    tcpEstablished: boolean;
    fileLocks: boolean;
    skipInFlight: boolean;
    keepAddress: boolean;
    sharedMounts: string[];
    copyMounts: string[];
  };
  archive: { encryption: 'none' | 'aes-256-gcm'; keyFile: string; plainDir: string };
  verify: { timeoutMs: number; intervalMs: number };
  hooks: HooksConfig;
  worker: { concurrency: number; lockDurationMs: number; stalledIntervalMs: number; repairIntervalMs: number };
  fleet: { maxParallel: number; perHostLimit: number };
  log: { level: string };
  dashboard: { host: string; port: number; token: string; basicAuth: { user: string; password: string }; readOnly: boolean; allowedHosts: string[]; bullBoardWrite: boolean };
}

let formatsRegistered = false;

// convict keeps formats in a global registry; registering on first load, not at import.
function registerFormats(): void {
  if (formatsRegistered) return;
  formatsRegistered = true;
  convict.addFormat({
    name: 'host-inventory',
    validate(value: unknown) {
      parseInventory(value);
    },
  });
  convict.addFormat({
    name: 'cutover-hooks',
    // Checked in full once the inventory is known (loadConfig), to name each bad field once.
    validate(value: unknown) {
      if (!Array.isArray(value)) throw new Error('must be an array of hooks');
    },
  });
  convict.addFormat({
    name: 'host-port-list',
    validate(value: unknown) {
      if (!Array.isArray(value)) throw new Error('must be an array of "host:port" strings');
      for (const v of value) {
        if (typeof v !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(v)) throw new Error(`"${String(v)}" is not "host:port"`);
      }
    },
  });
  // Counts and time limits where 0 would mean "never try" or "fail at once": refused, not obeyed.
  convict.addFormat({
    name: 'positive-int',
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new Error(`must be a whole number of at least 1, got ${JSON.stringify(value)}`);
    },
    coerce(value: unknown) {
      return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
    },
  });
  // convict's Boolean reads any non-empty string as true ("no" included): files must say
  // true or false; environment variables may say true/false/1/0.
  convict.addFormat({
    name: 'strict-boolean',
    validate(value: unknown) {
      if (typeof value !== 'boolean') throw new Error(`must be true or false, got ${JSON.stringify(value)}`);
    },
    coerce(value: unknown) {
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      return value;
    },
  });
  convict.addFormat({
    name: 'ferry-key',
    validate(value: unknown) {
      if (typeof value !== 'string' || !/^[a-zA-Z0-9_.-]{1,64}$/.test(value)) {
        throw new Error('must be 1-64 characters from [a-zA-Z0-9_.-]');
      }
    },
  });
}

export interface LoadOptions {
  /** Config file (JSON); FERRY_CONFIG is used when absent. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra values layered over the file, e.g. from tests or a library caller. */
  overrides?: Record<string, unknown>;
}

/** Loads, validates strictly (unknown keys are errors) and returns the typed config. */
export function loadConfig(opts: LoadOptions = {}): FerryConfig {
  registerFormats();
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.FERRY_CONFIG;
  const conf = convict(buildSchema(), { env });
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e: unknown) {
      throw new ConfigError(`cannot read config file ${file}: ${coerceError(e).message}`, e);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e: unknown) {
      throw new ConfigError(`config file ${file} is not valid JSON: ${coerceError(e).message}`, e);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${file} must hold a JSON object`);
    }
    // convict would merge an object into the default list and lose it: say so instead.
    const hosts = (parsed as Record<string, unknown>).hosts;
    if (hosts !== undefined && !Array.isArray(hosts)) {
      throw new ConfigError(`invalid configuration (${file}): hosts: must be an array of host entries, got ${hosts === null ? 'null' : typeof hosts}`);
    }
    const hooks = (parsed as Record<string, unknown>).hooks;
    const cutover = typeof hooks === 'object' && hooks !== null ? (hooks as Record<string, unknown>).cutover : undefined;
    if (cutover !== undefined && !Array.isArray(cutover)) {
      throw new ConfigError(`invalid configuration (${file}): hooks.cutover: must be an array of hooks, got ${cutover === null ? 'null' : typeof cutover}`);
    }
    try {
      conf.load(parsed);
    } catch (e: unknown) {
      throw new ConfigError(`config file ${file}: ${coerceError(e).message}`, e);
    }
  }
  if (opts.overrides) conf.load(opts.overrides);
  try {
    conf.validate({ allowed: 'strict' });
  } catch (e: unknown) {
    // convict appends the whole offending value; the key path says enough and values may be long.
    const msg = coerceError(e).message.replace(/: value was [\s\S]*$/, '');
    throw new ConfigError(`invalid configuration${file ? ` (${file})` : ''}: ${msg}`, e);
  }
  const raw = conf.getProperties() as unknown as Omit<FerryConfig, 'hosts' | 'hooks'> & { hosts: unknown; hooks: { cutover: unknown; onFailure: HooksConfig['onFailure'] } };
  if (raw.redis.cluster.nodes.length > 0 && raw.redis.sentinel.name) {
    throw new ConfigError(`invalid configuration${file ? ` (${file})` : ''}: redis.cluster.nodes and redis.sentinel.name are both set; use one`);
  }
  // A cluster only runs a multi-key command (BullMQ's scripts, Ferry's own) when every key
  // hashes to one slot: the prefix becomes the hash tag of every key, e.g. "{ferry}:…".
  const redis = raw.redis.cluster.nodes.length > 0 ? { ...raw.redis, prefix: `{${raw.redis.prefix}}` } : raw.redis;
  // Verify waits for the last page: a deadline past its time limit would time verify out first.
  // Checked here only when post-copy is the default; a single `--memory-copy post-copy` is
  // refused in preflight instead, so a plain installation is not bound by it.
  if (raw.checkpoint.memoryCopy !== 'plain' && raw.checkpoint.postCopyDeadlineSeconds * 1000 >= raw.timeouts.step.verify) {
    throw new ConfigError(
      `invalid configuration${file ? ` (${file})` : ''}: checkpoint.postCopyDeadlineSeconds (${raw.checkpoint.postCopyDeadlineSeconds} s) must be shorter than timeouts.step.verify (${raw.timeouts.step.verify} ms), which waits for every page`,
    );
  }
  const hosts = parseInventory(raw.hosts);
  let cutover;
  try {
    // A command hook must name a host of the inventory, and the hooks fit in their step's time limit.
    cutover = parseCutoverHooks(raw.hooks.cutover, { hosts: hosts.map((h) => h.name), stepTimeoutMs: raw.timeouts.step.cutover });
  } catch (e: unknown) {
    throw new ConfigError(`invalid configuration${file ? ` (${file})` : ''}: ${coerceError(e).message}`, e);
  }
  return { ...raw, redis, hosts, hooks: { ...raw.hooks, cutover } };
}

/** The effective config with every secret replaced, for `ferry config check` and logs. */
export function redactConfig(config: FerryConfig): unknown {
  const hidden = '<hidden>';
  return {
    ...config,
    redis: {
      ...config.redis,
      url: redactUrl(config.redis.url),
      password: config.redis.password ? hidden : '',
      tls: { ...config.redis.tls, key: config.redis.tls.key ? hidden : '' },
      sentinel: { ...config.redis.sentinel, password: config.redis.sentinel.password ? hidden : '' },
    },
    // Header values (a bearer token) and URL credentials or queries may be secrets.
    hooks: {
      ...config.hooks,
      cutover: config.hooks.cutover.map((h) => (h.kind === 'http' ? { ...h, url: redactUrl(h.url), headers: Object.fromEntries(Object.keys(h.headers).map((k) => [k, hidden])) } : h)),
    },
    dashboard: {
      ...config.dashboard,
      token: config.dashboard.token ? hidden : '',
      basicAuth: { ...config.dashboard.basicAuth, password: config.dashboard.basicAuth.password ? hidden : '' },
    },
  };
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '<hidden>';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//<hidden>@');
  }
}

export function findHost(config: FerryConfig, name: string): HostConfig | undefined {
  return config.hosts.find((h) => h.name === name);
}
