import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/config/load';
import { migrationFiles } from '../../src/engine/files';
import type { MigrationRecord } from '../../src/engine/model';
import type { StepContext } from '../../src/steps/context';
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
      if (argv[0] === 'runc') return Promise.resolve({ code: 1, stdout: '', stderr: 'container does not exist' });
      if (argv[0] === 'pkill' || argv[0] === 'test') return Promise.resolve({ code: 1, stdout: '', stderr: '' });
      return Promise.resolve(ok);
    },
  };
  return { runner, podman: new Podman(runner, ['podman']), calls };
}

/**
 * A step's context on host a (`source`) for a migration a -> b (`dest`), with work dirs in a
 * fresh temporary folder; fencing, locks and progress always succeed. `rec` patches the record.
 */
export function fakeContext(source: FakeHost, dest: FakeHost, rec: Partial<MigrationRecord> & Pick<MigrationRecord, 'state' | 'step'>): StepContext {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-step-test-'));
  const file = join(dir, 'ferry.json');
  const hosts = ['a', 'b'].map((name, i) => ({ name, address: `198.18.0.${11 + i}`, ssh: { privateKey: '/k' }, workDir: join(dir, name) }));
  writeFileSync(file, JSON.stringify({ hosts }));
  const config = loadConfig({ file, env: {} });
  const now = Date.now();
  const full: MigrationRecord = { id: 'm-test1-0123abcd', container: 'web', from: 'a', to: 'b', createdAt: now, updatedAt: now, probe: { kind: 'none' }, history: [], warnings: [], ...rec };
  const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;
  return {
    rec: full,
    step: rec.step,
    files: migrationFiles(full, config),
    config,
    self: config.hosts[0],
    installation: 'test',
    local: source.podman,
    localRunner: source.runner,
    remote: (name) => ({ host: config.hosts.find((h) => h.name === name) ?? config.hosts[1], runner: dest.runner, podman: dest.podman }),
    signal: new AbortController().signal,
    fence: () => Promise.resolve(),
    lockOn: () => Promise.resolve({ release: () => Promise.resolve() } as never),
    mark: (patch) => Promise.resolve({ ...full, ...patch }),
    progress: () => Promise.resolve(),
    redisRunId: () => Promise.resolve(`${'0'.repeat(40)}/${'0'.repeat(40)}`),
    claim: () => Promise.resolve(),
    log: quiet,
  };
}
