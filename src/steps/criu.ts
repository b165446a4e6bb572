import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';

const CACHE_MS = 5 * 60_000;
// Keyed by the runner's place, not the runner: every step attempt wraps the long-lived
// runners in new ones (abortable), so a cache keyed by object would never hit.
const passed = new Map<string, { version: string; at: number }>();

/**
 * CRIU must pass its own self-check on a host before a container is frozen there. A pass
 * is remembered for a few minutes per host: `criu check` and `criu --version` cost two
 * remote commands, about 0.4 s in preflight's critical path on the bed, for every migration.
 */
export async function checkCriu(runner: CommandRunner): Promise<string> {
  const hit = passed.get(runner.where);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.version;
  const version = await checkCriuNow(runner);
  passed.set(runner.where, { version, at: Date.now() });
  return version;
}

async function checkCriuNow(runner: CommandRunner): Promise<string> {
  const argv = ['criu', 'check'];
  const res = await runner.run(argv, { timeoutMs: 60_000 });
  if (res.code !== 0) {
    // A check that ran out of time says nothing about CRIU: only a real answer is final.
    throw new CommandError(`${runner.where}: CRIU is not usable (checkpoint/restore impossible there)`, argv, res.code, res.stderr + res.stdout, { permanent: res.code !== null });
  }
  const version = await runner.run(['criu', '--version']);
  return /Version:\s*(\S+)/.exec(version.stdout)?.[1] ?? 'unknown';
}
