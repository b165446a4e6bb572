import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { coerceError, ValidationError } from '../errors';
import { checkContainerName, checkHostName } from '../names';
import type { HealthProbe } from '../engine/model';
import { parseProbe } from '../engine/probe';
import { describeProblems, intIn, parseOr, pathText, Problem, quotedIssue, showValue, strictObject, viaCheck } from '../validation';

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

const hostName = z.unknown().transform(viaCheck(checkHostName));
const entryShape = {
  container: z.unknown().transform(viaCheck(checkContainerName)),
  from: hostName,
  to: hostName,
  probe: z.string({ error: 'must be a probe spec (a string)' }).transform(viaCheck(parseProbe)).optional(),
};
const ENTRY_KEYS = Object.keys(entryShape);
// The keys of the object form, as planSchema builds it.
const PLAN_KEYS = ['migrations', 'maxParallel', 'perHost'];

/** With an inventory (host names), every entry's hosts must be in it. */
function planSchema(inventory?: readonly string[]) {
  const entry = strictObject(entryShape, 'must be an object {container, from, to}').superRefine((e, ctx) => {
    if (e.from === e.to) ctx.addIssue(quotedIssue(`source and destination are the same host ("${e.from}"): nothing to migrate`));
    for (const field of ['from', 'to'] as const) {
      if (inventory && !inventory.includes(e[field])) ctx.addIssue(quotedIssue(`unknown host "${e[field]}": the inventory has ${inventory.join(', ') || 'no hosts'}`, [field]));
    }
  });
  return z.preprocess(
    (raw) => (Array.isArray(raw) ? { migrations: raw } : raw),
    strictObject(
      {
        migrations: z
          .array(entry, { error: 'must be a non-empty list' })
          .min(1, { error: 'must be a non-empty list' })
          .max(MAX_ENTRIES, { error: `must have at most ${MAX_ENTRIES} entries` })
          .superRefine((entries, ctx) => {
            const seen = new Map<string, number>();
            entries.forEach((e, i) => {
              const key = `${e.from}/${e.container}`;
              const first = seen.get(key);
              if (first === undefined) seen.set(key, i);
              else ctx.addIssue(quotedIssue(`container "${e.container}" on ${e.from} appears twice (also entry ${first + 1})`, [i]));
            });
          }),
        maxParallel: intIn(1, 1000).optional(),
        perHost: intIn(1, 1000).optional(),
      },
      'must be a list of migrations or an object with "migrations"',
    ),
  );
}

/** "plan FILE entry 7: <problem> (field "to")": entries are counted from 1, as people count them. */
function renderer(name: string) {
  return (p: Problem): string => {
    const [top, index, field, ...rest] = p.path;
    const unknown = (key: PropertyKey, allowed: string[]) => `unknown key ${showValue(String(key).slice(0, 40))} (allowed: ${allowed.join(', ')})`;
    if (top === 'migrations' && typeof index === 'number') {
      const where = `plan ${name} entry ${index + 1}`;
      if (field === undefined) return `${where}: ${p.text}`;
      if (p.unknownKey) return `${where}: ${unknown(field, ENTRY_KEYS)}`;
      return `${where}: ${p.text} (field ${showValue(pathText([field, ...rest]))})`;
    }
    if (top === undefined) return `plan ${name}: ${p.text}`;
    if (p.unknownKey) return `plan ${name}: ${unknown(top, PLAN_KEYS)}`;
    return `plan ${name}: ${pathText(p.path)} ${p.text}`;
  };
}

/**
 * A plan is a list of {container, from, to[, probe]}, or an object {migrations: [...],
 * maxParallel?, perHost?}; JSON or YAML. The whole file is checked before anything runs
 * (with `inventory`, the hosts too, so a typo in entry 7 stops the batch before entry 1
 * moves), and the error names each bad entry and field.
 */
export function parsePlan(text: string, name = 'file', inventory?: readonly string[]): Plan {
  let raw: unknown;
  try {
    raw = /^\s*[[{]/.test(text) ? JSON.parse(text) : parseYaml(text);
  } catch (e: unknown) {
    throw new ValidationError(`plan ${name}: is neither valid JSON nor YAML: ${coerceError(e).message.split('\n')[0]}`);
  }
  const plan = parseOr(planSchema(inventory), raw, (error) => new ValidationError(describeProblems(error, renderer(name))));
  return { entries: plan.migrations, maxParallel: plan.maxParallel, perHost: plan.perHost };
}

export function readPlan(file: string, inventory?: readonly string[]): Plan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e: unknown) {
    throw new ValidationError(`cannot read plan file ${file}: ${coerceError(e).message}`);
  }
  return parsePlan(text, file, inventory);
}
