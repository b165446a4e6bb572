import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/config/load';
import { migrationFiles } from '../../src/engine/files';
import type { MigrationRecord } from '../../src/engine/model';
import type { CommandResult } from '../../src/exec/runner';
import type { StepContext } from '../../src/steps/context';
import { rollback } from '../../src/steps/rollback';
import { fakeHost, inspectJson, type FakeHost } from '../support/fakePodman';

/**
 * Rollback's decision when nothing on the source can bring the container back (a cleanup that
 * ran, which a Redis crash made the record forget): the destination's copy may be the only
 * one, and must never be removed, whatever the answer to "what runs there?" was.
 * podman is faked as a runner answering its commands (recorded inspect output).
 */
const SOURCE_ID = 'f'.repeat(64);
const OTHER_ID = 'e'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'ferry-rollback-test-'));

function context(source: FakeHost, dest: FakeHost): StepContext {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      hosts: [
        { name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' }, workDir: join(dir, 'a') },
        { name: 'b', address: '198.18.0.12', ssh: { privateKey: '/k' }, workDir: join(dir, 'b') },
      ],
    }),
  );
  const config = loadConfig({ file, env: {} });
  const now = Date.now();
  const rec = {
    id: 'm-test1-0123abcd',
    container: 'web',
    from: 'a',
    to: 'b',
    state: 'rolling-back',
    step: 'rollback',
    createdAt: now,
    updatedAt: now,
    frozenAt: now - 5000,
    probe: { kind: 'running' },
    source: { id: SOURCE_ID, image: 'x', imageId: 'y', ports: [] },
    history: [],
    warnings: [],
  } as unknown as MigrationRecord;
  const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;
  return {
    rec,
    step: 'rollback',
    files: migrationFiles(rec, config),
    config,
    self: config.hosts[0],
    installation: 'test',
    local: source.podman,
    localRunner: source.runner,
    remote: (name) => ({ host: config.hosts.find((h) => h.name === name) ?? config.hosts[1], runner: dest.runner, podman: dest.podman }),
    signal: new AbortController().signal,
    fence: () => Promise.resolve(),
    lockOn: () => Promise.resolve({ release: () => Promise.resolve() } as never),
    mark: (patch) => Promise.resolve({ ...rec, ...patch }),
    progress: () => Promise.resolve(),
    claim: () => Promise.resolve(),
    log: quiet,
  };
}

const removals = (h: FakeHost): string[][] => h.calls.filter((c) => c.includes('rm') || c.includes('rmi') || c[0] === 'runc');
const running = (id: string): CommandResult => ({ code: 0, stdout: inspectJson(id, true), stderr: '' });

describe('rollback with nothing left on the source never removes the destination copy', () => {
  it('when asking the destination fails once, the attempt fails; the running copy stays', async () => {
    const source = fakeHost('host a', [null]);
    const dest = fakeHost('host b', [{ code: 125, stdout: '', stderr: 'Error: database is locked' }, running(SOURCE_ID)]);
    await assert.rejects(rollback(context(source, dest)), /database is locked/);
    assert.deepEqual(removals(dest), [], 'nothing removed on the destination');
  });

  it('a copy there that does not run is left too, and the migration ends needing a person', async () => {
    const source = fakeHost('host a', [null]);
    const dest = fakeHost('host b', [{ code: 0, stdout: inspectJson(SOURCE_ID, false), stderr: '' }]);
    await assert.rejects(rollback(context(source, dest)), (e: Error & { code?: string }) => e.code === 'ROLLBACK_IMPOSSIBLE' && e.message.includes('left untouched'));
    assert.deepEqual(removals(dest), []);
  });

  it('a running copy there ends the migration, left running', async () => {
    const source = fakeHost('host a', [null]);
    const dest = fakeHost('host b', [running(SOURCE_ID)]);
    await assert.rejects(rollback(context(source, dest)), (e: Error & { code?: string }) => e.code === 'RUNS_ON_DESTINATION');
    assert.deepEqual(removals(dest), []);
  });

  it('another container by its name on the source is not the container: nothing anywhere is touched', async () => {
    const source = fakeHost('host a', [running(OTHER_ID)]);
    const dest = fakeHost('host b', [running(SOURCE_ID)]);
    await assert.rejects(rollback(context(source, dest)), (e: Error & { code?: string }) => e.code === 'ROLLBACK_IMPOSSIBLE' && e.message.includes('another container named "web"'));
    assert.deepEqual(removals(dest), []);
    assert.deepEqual(removals(source), []);
  });
});
