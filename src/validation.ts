import { z } from 'zod';
import { coerceError, ValidationError } from './errors';

/**
 * The one wording of a validation failure, shared by the host inventory, plan files and job
 * payloads: where it is (the path the user wrote), what is wrong, and the value found. The
 * schemas themselves live next to what they check.
 */

/** A value as a message shows it: JSON, cut short, since inputs may be huge or hostile. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? plainText(value);
  } catch {
    // A cycle (YAML aliases can make one) or a BigInt: the short form will do.
    text = plainText(value);
  }
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** What JSON cannot show (a BigInt, a symbol, a function) or could not (a cycle: only its kind). */
function plainText(value: unknown): string {
  switch (typeof value) {
    case 'object':
      return Array.isArray(value) ? '[…]' : value === null ? 'null' : '{…}';
    case 'string':
      return value;
    default:
      return String(value);
  }
}

/** `hosts[0].ssh.port`: keys joined the way the user would write them. */
export function pathText(path: readonly PropertyKey[]): string {
  const key = (k: PropertyKey) => (String(k).length > 40 ? `${String(k).slice(0, 40)}…` : String(k));
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${key(k)}`)).join('');
}

export interface Problem {
  /** From the document's root; for an unknown key, the key is the last element. */
  path: PropertyKey[];
  unknownKey: boolean;
  /** What is wrong, with the value found ("must be an integer from 1 to 65535, got 70000"). */
  text: string;
}

// Set on issues whose message already quotes the value (Ferry's own checkers'), so it is not shown twice.
const QUOTES_VALUE = 'quotesValue';

export function problemsOf(error: z.ZodError): Problem[] {
  const out: Problem[] = [];
  for (const iss of error.issues) {
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) out.push({ path: [...iss.path, key], unknownKey: true, text: iss.message });
    } else {
      const quoted = iss.code === 'custom' && iss.params?.[QUOTES_VALUE] === true;
      out.push({ path: [...iss.path], unknownKey: false, text: quoted ? iss.message : `${iss.message}, got ${showValue(iss.input)}` });
    }
  }
  // A value can fail several checks with one message (an integer that is also out of range).
  const seen = new Set<string>();
  return out.filter((p) => {
    const key = `${pathText(p.path)}\0${p.text}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const SHOWN = 5;

/** Every problem (the first few, when there are many) as one message. */
export function describeProblems(error: z.ZodError, render: (p: Problem) => string = (p) => (p.path.length ? `${pathText(p.path)}: ${p.text}` : p.text)): string {
  const all = problemsOf(error).map(render);
  return all.length > SHOWN ? `${all.slice(0, SHOWN).join('; ')}; and ${all.length - SHOWN} more` : all.join('; ');
}

/** Parses with the values kept on the issues (zod leaves them out by default), or throws `fail(message)`. */
export function parseOr<S extends z.ZodType>(schema: S, data: unknown, fail: (error: z.ZodError) => Error): z.output<S> {
  const r = schema.safeParse(data, { reportInput: true });
  if (!r.success) throw fail(r.error);
  return r.data;
}

/**
 * A transform running one of Ferry's own checkers (names, probe specs), which throw a
 * ValidationError quoting the value; anything else they throw is a bug and goes through.
 */
export function viaCheck<I, O>(check: (value: I) => O) {
  return (value: I, ctx: z.RefinementCtx<I>): O => {
    try {
      return check(value);
    } catch (e: unknown) {
      const err = coerceError(e);
      if (!(err instanceof ValidationError)) throw err;
      ctx.issues.push({ ...quotedIssue(err.message), input: value });
      return z.NEVER;
    }
  };
}

/** A custom issue whose message already quotes the value (for `ctx.addIssue`). */
export function quotedIssue(message: string, path: PropertyKey[] = []) {
  return { code: 'custom' as const, message, path, params: { [QUOTES_VALUE]: true } };
}

/** An object that refuses keys it does not know, listing the ones it does. */
export function strictObject<T extends z.ZodRawShape>(shape: T, notObject = 'must be an object') {
  const unknown = `unknown key (allowed: ${Object.keys(shape).join(', ')})`;
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? unknown : notObject) });
}

export function intIn(min: number, max: number) {
  const error = `must be an integer from ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}
