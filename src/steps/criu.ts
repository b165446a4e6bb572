import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';

/** CRIU must pass its own self-check on a host before a container is frozen there. */
export async function checkCriu(runner: CommandRunner): Promise<string> {
  const argv = ['criu', 'check'];
  const res = await runner.run(argv, { timeoutMs: 60_000 });
  if (res.code !== 0) {
    throw new CommandError(`${runner.where}: CRIU is not usable (checkpoint/restore impossible there)`, argv, res.code, res.stderr + res.stdout, { permanent: true });
  }
  const version = await runner.run(['criu', '--version']);
  return /Version:\s*(\S+)/.exec(version.stdout)?.[1] ?? 'unknown';
}
