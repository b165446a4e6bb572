import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CliResult, ferry, makeConfig, REPO, removeContainers, runHttpd, startWorker, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import { FORWARD_STEPS } from '../../src/engine/steps';

// The forward chain as the step table defines it (src/engine/steps.ts).
const FORWARD: readonly string[] = FORWARD_STEPS;

/** `ferry` in the background (stdout is a pipe, so not a terminal); resolves once stdout shows `ready`. */
function ferryUntil(cfg: TestConfig, args: string[], ready: RegExp): { started: Promise<void>; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'ferry.js'), '--config', cfg.file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => undefined;
  const started = new Promise<void>((r) => (markReady = r));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (ready.test(stdout)) markReady();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  const done = new Promise<CliResult>((res) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      markReady();
      res({ code, stdout, stderr });
    }),
  );
  return { started, done };
}

describe('ferry watch, history and status on a pipe', function () {
  this.timeout(110_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const names: string[] = [];

  before(async () => {
    cfg = makeConfig();
    // Only b at first: the migration waits in a's queue until both watchers are following it.
    workers = await startWorkers(['b'], cfg);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers(names);
  });

  it('prints progress lines that end with the final state', async () => {
    const name = `watch-${uid()}`;
    names.push(name);
    runHttpd('a', name, 18000 + Math.floor(Math.random() * 1000));
    const started = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b']);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();

    const one = ferryUntil(cfg, ['watch', id], /queued/);
    const all = ferryUntil(cfg, ['watch', '--until-idle'], new RegExp(`${id} .* queued`));
    await Promise.all([one.started, all.started]);
    workers.push(await startWorker('a', cfg));
    const [r1, r2] = await Promise.all([one.done, all.done]);

    assert.equal(r1.code, 0, `watch <id> exits 0 when the migration succeeded: ${r1.stderr}`);
    const lines = r1.stdout.trim().split('\n');
    assert.ok(
      lines.every((l) => l.includes(id) && l.includes(`${name} a->b`)),
      `every line names the migration:\n${r1.stdout}`,
    );
    const steps = lines.map((l) => /\d+% (\w+) (started|done)/.exec(l)?.[1]).filter((s): s is string => !!s);
    assert.deepEqual([...new Set(steps)], FORWARD, `every step is shown, in order:\n${r1.stdout}`);
    assert.ok(
      lines.some((l) => /\d+% transfer|\d+% checkpoint \[/.test(l)),
      'progress lines with a percentage',
    );
    assert.match(lines[lines.length - 1], new RegExp(`${id} ${name} a->b final: succeeded after .*downtime \\d+ ms`));
    assert.ok(!r1.stdout.includes('\x1b['), 'no terminal escapes on a pipe');

    assert.equal(r2.code, 0, r2.stderr);
    const allLines = r2.stdout.trim().split('\n');
    assert.match(allLines[allLines.length - 1], new RegExp(`${id} ${name} a->b final: succeeded`), `watch --until-idle ends with the final state:\n${r2.stdout}`);
    assert.ok(allLines.some((l) => l.includes(id) && l.includes('restore started on b')));

    const hist = await ferry(cfg, ['history', '--json', '--since', '10m']);
    const recs = JSON.parse(hist.stdout) as { id: string; state: string }[];
    assert.deepEqual(
      recs.map((r) => [r.id, r.state]),
      [[id, 'succeeded']],
    );
    const text = await ferry(cfg, ['history']);
    assert.match(text.stdout, new RegExp(`${id}\\s+succeeded`));
    assert.match(text.stdout, /1 migration: 1 succeeded/);
    const none = await ferry(cfg, ['history', '--since', '2000-01-01T00:00:00Z', '--json']);
    assert.equal((JSON.parse(none.stdout) as unknown[]).length, 1);
    const badSince = await ferry(cfg, ['history', '--since', 'yesterday-ish']);
    assert.equal(badSince.code, 2);
    const status = await ferry(cfg, ['status', id, '--json']);
    assert.equal((JSON.parse(status.stdout) as { state: string }).state, 'succeeded');
  });

  it('watch of an unknown id is a usage error', async () => {
    const r = await ferry(cfg, ['watch', 'm-nope-00000000']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no migration/);
  });
});
