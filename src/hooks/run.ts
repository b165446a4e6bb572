import { coerceError } from '../errors';
import { CommandRunner, shellJoin } from '../exec/runner';
import type { CutoverHook, HttpHook } from './config';
import type { CutoverPayload } from './payload';

/** How much of a hook's stderr or response body a message quotes. */
const QUOTED = 300;

function tail(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t.length > QUOTED ? `…${t.slice(-QUOTED)}` : t;
}

/** A URL as messages and records show it: no credentials, no query (either may hold a secret). */
export function showUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** One hook in a line, for warnings, errors and progress. */
export function describeHook(hook: CutoverHook): string {
  if (hook.kind === 'http') return `http ${hook.method} ${showUrl(hook.url)}`;
  const cmd = shellJoin(hook.argv);
  return `command on ${hook.host}: ${cmd.length > 80 ? `${cmd.slice(0, 80)}…` : cmd}`;
}

export interface HookDeps {
  /** The runner of the hook's host (this host's own, or SSH to another). */
  runnerFor(host: string): CommandRunner;
  /** The step attempt's signal: when it aborts, the hook stops and the abort goes through. */
  signal: AbortSignal;
}

/** The body every hook gets: one JSON object and a line break. */
export function payloadText(payload: CutoverPayload): string {
  return `${JSON.stringify(payload)}\n`;
}

/**
 * Runs one hook. Returns null when it succeeded, else why it failed. A hook that could not
 * run (host unreachable, connection refused) has failed too; only the attempt's own abort
 * (time limit, superseded) is thrown, so the step's retry and fencing rules still apply.
 */
export async function runHook(hook: CutoverHook, payload: CutoverPayload, deps: HookDeps): Promise<string | null> {
  try {
    return hook.kind === 'command' ? await runCommand(hook.argv, hook.timeoutMs, deps.runnerFor(hook.host), payload, deps.signal) : await runHttp(hook, payload, deps.signal);
  } catch (e: unknown) {
    if (deps.signal.aborted) throw coerceError(deps.signal.reason);
    return coerceError(e).message;
  }
}

async function runCommand(argv: string[], timeoutMs: number, runner: CommandRunner, payload: CutoverPayload, signal: AbortSignal): Promise<string | null> {
  const res = await runner.run(argv, { stdin: payloadText(payload), timeoutMs, signal });
  if (res.code === 0) return null;
  const stderr = tail(res.stderr);
  return `exited ${res.code ?? 'on a signal'} on ${runner.where}${stderr ? `: ${stderr}` : ''}`;
}

async function runHttp(hook: HttpHook, payload: CutoverPayload, signal: AbortSignal): Promise<string | null> {
  const limit = AbortSignal.timeout(hook.timeoutMs);
  let res: Response;
  try {
    res = await fetch(hook.url, {
      method: hook.method,
      headers: { 'content-type': 'application/json', ...hook.headers },
      body: payloadText(payload),
      // A redirect is an answer the hook's author did not expect: reported, not followed.
      redirect: 'manual',
      signal: AbortSignal.any([signal, limit]),
    });
  } catch (e: unknown) {
    if (limit.aborted && !signal.aborted) return `no answer within ${hook.timeoutMs} ms`;
    const err = coerceError(e);
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    throw new Error(`${err.message}${cause}`, { cause: e });
  }
  const body = await res.text().catch(() => '');
  if (res.status >= 200 && res.status < 300) return null;
  const said = tail(body);
  return `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${said ? `: ${said}` : ''}`;
}
