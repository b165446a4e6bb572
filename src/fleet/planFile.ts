import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../errors';
import { checkContainerName, checkHostName } from '../names';
import type { HealthProbe } from '../engine/model';
import { parseProbe } from '../cli/probe';

export interface PlanEntry {
  container: string;
  from: string;
  to: string;
  probe?: HealthProbe;
}

export interface Plan {
  entries: PlanEntry[];
  maxParallel?: number;
  perHost?: number;
}

const MAX_ENTRIES = 10_000;

function fail(where: string, msg: string): never {
  throw new ValidationError(`plan ${where}: ${msg}`);
}

/**
 * A plan is a list of {container, from, to[, probe]}, or an object {migrations: [...],
 * maxParallel?, perHost?}; JSON or YAML. Every entry is checked before anything runs.
 */
export function parsePlan(text: string, name = 'file'): Plan {
  let raw: unknown;
  try {
    raw = /^\s*[[{]/.test(text) ? JSON.parse(text) : parseYaml(text);
  } catch (e: unknown) {
    fail(name, `is neither valid JSON nor YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const obj = Array.isArray(raw) ? { migrations: raw } : raw;
  if (typeof obj !== 'object' || obj === null) fail(name, 'must be a list of migrations or an object with "migrations"');
  const o = obj as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['migrations', 'maxParallel', 'perHost'].includes(k)) fail(name, `unknown key "${k.slice(0, 40)}" (allowed: migrations, maxParallel, perHost)`);
  if (!Array.isArray(o.migrations) || o.migrations.length === 0) fail(name, '"migrations" must be a non-empty list');
  if (o.migrations.length > MAX_ENTRIES) fail(name, `has ${o.migrations.length} entries; at most ${MAX_ENTRIES}`);
  const limit = (v: unknown, k: string) => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000) fail(name, `${k} must be an integer from 1 to 1000`);
    return v;
  };
  const seen = new Set<string>();
  const entries = o.migrations.map((e: unknown, i: number): PlanEntry => {
    const at = `${name} entry ${i + 1}`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) fail(at, 'must be an object {container, from, to}');
    const r = e as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!['container', 'from', 'to', 'probe'].includes(k)) fail(at, `unknown key "${k.slice(0, 40)}"`);
    const wrap = <T>(f: () => T): T => {
      try {
        return f();
      } catch (err: unknown) {
        return fail(at, (err as Error).message);
      }
    };
    const container = wrap(() => checkContainerName(r.container));
    const from = wrap(() => checkHostName(r.from));
    const to = wrap(() => checkHostName(r.to));
    if (seen.has(`${from}/${container}`)) fail(at, `container "${container}" on ${from} appears twice`);
    seen.add(`${from}/${container}`);
    const probe = r.probe === undefined ? undefined : typeof r.probe === 'string' ? wrap(() => parseProbe(r.probe as string)) : fail(at, 'probe must be a string');
    return { container, from, to, probe };
  });
  return { entries, maxParallel: limit(o.maxParallel, 'maxParallel'), perHost: limit(o.perHost, 'perHost') };
}

export function readPlan(file: string): Plan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e: unknown) {
    throw new ValidationError(`cannot read plan file ${file}: ${(e as Error).message}`);
  }
  return parsePlan(text, file);
}
