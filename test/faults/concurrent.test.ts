import { strict as assert } from 'node:assert';
import { ferry, startWorkers, stopWorkers, uid, WorkerProc } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, invariant, recordRun, RUNS, runBigCounter, Watch } from '../support/faults';

describe('faults: two migrations of the same container requested at once', function () {
  this.timeout(300_000);

  for (let i = 1; i <= RUNS; i++) {
    it(`two \`ferry migrate\` processes at once: one runs, the other is refused${RUNS > 1 ? ` (run ${i}/${RUNS})` : ''}`, async () => {
      const started = Date.now();
      const cfg = faultConfig();
      const name = `flt-${uid()}`;
      let workers: WorkerProc[] = [];
      const client = clientFor(cfg);
      try {
        workers = await startWorkers(['a', 'c'], cfg);
        runBigCounter('a', name, 0);
        const before = await counterAt('a', name, 3);
        const args = ['migrate', name, '--from', 'a', '--to', 'c', '--probe', 'exec:cat /tmp/count'];
        const res = await Promise.all([ferry(cfg, args), ferry(cfg, args)]);
        const ok = res.filter((r) => r.code === 0);
        const refused = res.filter((r) => r.code === 2 && r.stderr.includes('already part of migration'));
        const problems: string[] = [];
        if (ok.length !== 1 || refused.length !== 1) problems.push(`exit codes ${res.map((r) => r.code).join(',')}: ${res.map((r) => r.stderr.trim()).join(' | ')}`);
        const finals = await Promise.all(ok.map((r) => new Watch(client, r.stdout.trim()).final));
        for (const rec of finals) problems.push(...invariant({ rec, name, before, workDir: cfg.workDir }).problems);
        recordRun({
          fault: 'two migrations of one container at once',
          where: 'submission (two CLI processes in parallel)',
          ok: problems.length === 0,
          outcome: `${ok.length} accepted, ${refused.length} refused; ${finals.map((f) => f.state).join(',')}`,
          note: problems.join('; '),
          ms: Date.now() - started,
        });
        assert.deepEqual(problems, []);
      } finally {
        await stopWorkers(workers);
        await client.close();
        cleanHosts([name], cfg.workDir);
      }
    });
  }

  it('50 rounds of two submissions racing on separate connections: never both accepted', async () => {
    const started = Date.now();
    const cfg = faultConfig();
    // No workers: the migrations stay queued and are cancelled; only the lock is under test.
    const c1 = clientFor(cfg);
    const c2 = clientFor(cfg);
    const doubles: string[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        const req = { container: `race-${uid()}`, from: 'a', to: 'c' };
        const res = await Promise.allSettled([c1.migrate(req), c2.migrate(req)]);
        const won = res.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof c1.migrate>>> => r.status === 'fulfilled');
        if (won.length > 1) doubles.push(`${req.container}: ${won.map((w) => w.value.id).join(' and ')}`);
        for (const r of res) if (r.status === 'rejected') assert.match(String(r.reason), /already part of migration/);
        for (const w of won) await c1.cancel(w.value.id);
      }
    } finally {
      await c1.close();
      await c2.close();
    }
    recordRun({
      fault: 'two migrations of one container at once',
      where: 'submission race (2 clients, 50 rounds, no delay)',
      ok: doubles.length === 0,
      outcome: `${50 - doubles.length}/50 rounds with exactly one accepted`,
      note: doubles.length ? `BOTH accepted in ${doubles.length} rounds, e.g. ${doubles[0]}` : '',
      ms: Date.now() - started,
    });
    assert.deepEqual(doubles, [], 'both submissions were accepted');
  });
});
