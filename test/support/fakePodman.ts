import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandResult, CommandRunner } from '../../src/exec/runner';
import { Podman } from '../../src/podman/podman';

/**
 * One host's podman for unit tests of a step's decisions, faked as a runner: `container
 * inspect` answers with recorded output (test/fixtures/inspect-macvlan.json) given another id
 * and state. Every command is kept, so a test can say what was never run (a removal).
 */
const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures');
const ok: CommandResult = { code: 0, stdout: '', stderr: '' };

/** podman inspect output of a container named "web" with this id, running or exited. */
export function inspectJson(id: string, running: boolean): string {
  const [c] = JSON.parse(readFileSync(join(FIXTURES, 'inspect-macvlan.json'), 'utf8')) as Record<string, unknown>[];
  return JSON.stringify([{ ...c, Id: id, Name: 'web', Pod: '', State: { ...(c.State as object), Running: running, Status: running ? 'running' : 'exited' } }]);
}

export interface FakeHost {
  runner: CommandRunner;
  podman: Podman;
  calls: string[][];
}

/** A host whose podman answers `inspect` with each of `inspects` in turn, then the last again (null: no such container). */
export function fakeHost(where: string, inspects: (CommandResult | null)[]): FakeHost {
  const calls: string[][] = [];
  let last: CommandResult | null = null;
  const runner: CommandRunner = {
    where,
    run(argv) {
      calls.push([...argv]);
      const cmd = argv.join(' ');
      if (cmd.includes('container inspect')) {
        last = inspects.length ? (inspects.shift() ?? null) : last;
        return Promise.resolve(last ?? { code: 125, stdout: '', stderr: 'Error: no such container web' });
      }
      if (cmd.includes('container exists')) return Promise.resolve(last ? (last.code === 0 ? ok : last) : { code: 1, stdout: '', stderr: '' });
      if (argv[0] === 'pkill' || argv[0] === 'test' || argv[0] === 'runc') return Promise.resolve({ code: 1, stdout: '', stderr: '' });
      return Promise.resolve(ok);
    },
  };
  return { runner, podman: new Podman(runner, ['podman']), calls };
}
