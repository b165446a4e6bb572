import { StepError } from '../errors';
import { cutoverPayload } from '../hooks/payload';
import { describeHook, runHook } from '../hooks/run';
import type { Step } from './context';

/**
 * Source host, after the destination was verified and before the source copy is removed:
 * the configured hooks (`hooks.cutover`) are told where the container now runs, one after
 * the other, so a load balancer or DNS can follow. A failing hook either fails the step for
 * good, and the migration rolls back (the source still holds the frozen container), or
 * leaves a warning in the record (`hooks.onFailure`). A retried attempt runs every hook
 * again, with a higher `attempt` in the details: hooks must be idempotent.
 */
export const cutover: Step = async (ctx) => {
  const { rec, config } = ctx;
  const hooks = config.hooks.cutover;
  if (hooks.length === 0) return { result: { hooks: 0 } };
  const payload = cutoverPayload(rec, config, rec.attempt?.n ?? 1);
  const runnerFor = (host: string) => (host === ctx.self.name ? ctx.localRunner : ctx.remote(host).runner);
  const warnings: string[] = [];
  for (const [i, hook] of hooks.entries()) {
    const what = `cut-over hook ${i + 1} of ${hooks.length} (${describeHook(hook)})`;
    await ctx.progress({ percent: Math.round((100 * i) / hooks.length), message: what });
    // A hook acts outside Ferry: a superseded attempt must not call it.
    await ctx.fence();
    const failure = await runHook(hook, payload, { runnerFor, signal: ctx.signal });
    if (failure === null) continue;
    if (config.hooks.onFailure === 'rollback') {
      throw new StepError(`${what} failed: ${failure}; the migration rolls back (hooks.onFailure is "rollback")`, { code: 'CUTOVER_HOOK_FAILED', permanent: true });
    }
    ctx.log.warn({ hook: i + 1, failure }, 'cut-over hook failed; going on');
    warnings.push(`${what} failed: ${failure}; the migration went on (hooks.onFailure is "continue")`);
  }
  return {
    result: { hooks: hooks.length, failed: warnings.length, attempt: payload.attempt },
    patch: warnings.length ? { warnings: [...rec.warnings, ...warnings] } : undefined,
  };
};
