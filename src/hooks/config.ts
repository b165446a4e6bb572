import { z } from 'zod';
import { ConfigError } from '../errors';
import { checkHostName } from '../names';
import { describeProblems, intIn, parseOr, pathText, Problem, quotedIssue, strictObject, viaCheck } from '../validation';

/** A command run on a host of the inventory, as an argument vector; it reads the details as JSON on its stdin. */
export interface CommandHook {
  kind: 'command';
  host: string;
  argv: string[];
  timeoutMs: number;
}

/** An HTTP request whose body is the details as JSON; any answer but 2xx is a failure. */
export interface HttpHook {
  kind: 'http';
  url: string;
  method: 'POST' | 'PUT' | 'PATCH';
  headers: Record<string, string>;
  timeoutMs: number;
}

export type CutoverHook = CommandHook | HttpHook;

/** What a failing hook does to its migration: roll it back, or carry on with a warning in the record. */
export type HookFailurePolicy = 'rollback' | 'continue';

export interface HooksConfig {
  cutover: CutoverHook[];
  onFailure: HookFailurePolicy;
}

export const HOOK_FAILURE_POLICIES = ['rollback', 'continue'] as const;
const DEFAULT_HOOK_TIMEOUT_MS = 30_000;
const NON_EMPTY = 'must be a non-empty string';

const arg = z.string({ error: 'must be a string' }).regex(/^[^\0]*$/, { error: 'must not contain NUL' });
const timeoutMs = intIn(1, 3_600_000).default(DEFAULT_HOOK_TIMEOUT_MS);

const commandHook = strictObject({
  kind: z.literal('command'),
  host: z.unknown().transform(viaCheck(checkHostName)),
  argv: z
    .array(arg, { error: 'must be a non-empty array of strings' })
    .min(1, { error: 'must be a non-empty array of strings' })
    .refine((a) => a[0] !== '', { error: 'must start with a program name' }),
  timeoutMs,
});

const httpUrl = z.string({ error: NON_EMPTY }).refine(
  (u) => {
    try {
      const p = new URL(u).protocol;
      return p === 'http:' || p === 'https:';
    } catch {
      return false;
    }
  },
  { error: 'must be an http:// or https:// URL' },
);

// RFC 9110 token for names; values must not smuggle a second header or line.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const headers = z.record(z.string(), z.string({ error: 'must be a string' }).regex(/^[^\0\r\n]*$/, { error: 'must not contain NUL or line breaks' }), { error: 'must be an object of header names to strings' }).superRefine((h, ctx) => {
  for (const k of Object.keys(h)) if (!HEADER_NAME.test(k)) ctx.addIssue(quotedIssue(`${JSON.stringify(k)} is not a header name (letters, digits and !#$%&'*+.^_\`|~-)`, [k]));
});

const httpHook = strictObject({
  kind: z.literal('http'),
  url: httpUrl,
  method: z.enum(['POST', 'PUT', 'PATCH'], { error: 'must be POST, PUT or PATCH (the details travel in the body)' }).default('POST'),
  headers: headers.default({}),
  timeoutMs,
});

const hookSchema = z.discriminatedUnion('kind', [commandHook, httpHook], { error: 'must be an object with kind "command" or "http"' });

export interface HookCheckOptions {
  /** The inventory's host names: a command hook must name one of them. */
  hosts?: readonly string[];
  /** The cutover step's time limit: hooks run one after the other within it. */
  stepTimeoutMs?: number;
}

function hooksSchema(opts: HookCheckOptions) {
  return z.array(hookSchema, { error: 'must be an array of hooks' }).superRefine((hooks, ctx) => {
    if (opts.hosts) {
      const known = opts.hosts;
      hooks.forEach((h, i) => {
        if (h.kind === 'command' && !known.includes(h.host)) {
          ctx.addIssue(quotedIssue(`host ${JSON.stringify(h.host)} is not in the inventory (hosts: ${known.join(', ') || 'none'})`, [i, 'host']));
        }
      });
    }
    const total = hooks.reduce((s, h) => s + h.timeoutMs, 0);
    if (opts.stepTimeoutMs !== undefined && total >= opts.stepTimeoutMs) {
      ctx.addIssue(
        quotedIssue(
          `the hooks' time limits add up to ${total} ms, not less than timeouts.step.cutover (${opts.stepTimeoutMs} ms): the step would be stopped before its hooks could fail by themselves; raise timeouts.step.cutover or lower hooks' timeoutMs`,
        ),
      );
    }
  });
}

/**
 * Validates `hooks.cutover` and fills defaults. Errors name the entry and field the way the
 * user wrote them: `hooks.cutover[1].url: must be an http:// or https:// URL, got "ftp://x"`.
 */
export function parseCutoverHooks(raw: unknown, opts: HookCheckOptions = {}): CutoverHook[] {
  return parseOr(hooksSchema(opts), raw, (error) => {
    const render = (p: Problem): string => `hooks.cutover${p.path.length ? pathText(p.path).replace(/^(?!\[)/, '.') : ''}: ${p.text}`;
    return new ConfigError(describeProblems(error, render));
  });
}
