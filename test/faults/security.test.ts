import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ferry, OUTPUT, REPO, startWorkers, stopWorkers, uid, WorkerProc } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, holdQueue, onHostStat, ownRedis, recordRun, runBigCounter, usingRedis, Watch } from '../support/faults';

/**
 * Measured for docs/security.md: archive permissions on both hosts while a migration is
 * held between transfer and restore, archives gone afterwards, and the Redis password absent
 * from logs, `ferry status`, `ferry config check` and every dashboard endpoint.
 */
describe('security: archive permissions and secrets', function () {
  this.timeout(180_000);

  it('archives are 0600 in a 0700 dir on source and destination, and gone after success; the password shows nowhere', async () => {
    const started = Date.now();
    const redis = await ownRedis();
    const cfg = usingRedis(faultConfig(), redis);
    const name = `sec-${uid()}`;
    let workers: WorkerProc[] = [];
    const client = clientFor(cfg);
    const problems: string[] = [];
    const modes: string[] = [];
    let dash: ReturnType<typeof spawn> | undefined;
    try {
      workers = await startWorkers(['a', 'c'], cfg);
      runBigCounter('a', name, 1);
      await counterAt('a', name, 2);
      const rec = await client.migrate({ container: name, from: 'a', to: 'c', probe: { kind: 'none' } });
      const watch = new Watch(client, rec.id);
      await watch.started('checkpoint');
      const hold = await holdQueue(cfg, 'c');
      try {
        await watch.done('transfer');
        const file = (await client.get(rec.id))?.archive?.file ?? 'none';
        for (const h of ['a', 'c']) {
          const dir = onHostStat(h, cfg.workDir);
          const arc = onHostStat(h, join(cfg.workDir, file));
          modes.push(`${h}: dir ${dir} archive ${arc}`);
          if (dir !== '700 root') problems.push(`${h}: work dir is ${dir}`);
          if (arc !== '600 root') problems.push(`${h}: archive is ${arc}`);
        }
      } finally {
        await hold.resume();
      }
      const final = await watch.final;
      if (final.state !== 'succeeded') problems.push(`migration ${final.state}: ${final.error}`);
      for (const h of ['a', 'c']) {
        const left = onHostStat(h, join(cfg.workDir, final.archive?.file ?? 'none'));
        if (left !== 'missing') problems.push(`${h}: archive still there after success (${left})`);
      }
      // Every place a secret could leak to: status (text, JSON), config check, worker logs, dashboard.
      const outputs: [string, string][] = [];
      for (const args of [
        ['status', rec.id],
        ['status', rec.id, '--json'],
        ['status', '--json'],
        ['config', 'check'],
      ]) {
        const r = await ferry(cfg, args);
        outputs.push([`ferry ${args.join(' ')}`, r.stdout + r.stderr]);
      }
      for (const f of readdirSync(OUTPUT).filter((x) => x.startsWith(cfg.prefix) && x.endsWith('.log'))) outputs.push([f, readFileSync(join(OUTPUT, f), 'utf8')]);
      const port = 20000 + Math.floor(Math.random() * 5000);
      dash = spawn(process.execPath, [join(REPO, 'bin', 'ferry.js'), '--config', cfg.file, 'dashboard', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let dashOut = '';
      dash.stdout?.on('data', (d: Buffer) => (dashOut += d.toString()));
      dash.stderr?.on('data', (d: Buffer) => (dashOut += d.toString()));
      for (let i = 0; i < 100 && !dashOut.includes('listening'); i++) await new Promise((r) => setTimeout(r, 100));
      for (const path of ['/', '/api/overview', `/api/migrations/${rec.id}`, '/metrics', '/queues/api/queues', '/healthz']) {
        try {
          const token = /\?token=([A-Za-z0-9_-]+)/.exec(dashOut)?.[1] ?? '';
          const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000), headers: { Authorization: `Bearer ${token}` } });
          outputs.push([`dashboard ${path} (${res.status})`, await res.text()]);
        } catch (e: unknown) {
          outputs.push([`dashboard ${path}`, `unreachable: ${String(e)}`]);
        }
      }
      outputs.push(['dashboard output', dashOut]);
      const leaks = outputs.filter(([, text]) => text.includes(redis.password)).map(([where]) => where);
      if (leaks.length) problems.push(`Redis password shown by: ${leaks.join(', ')}`);
      recordRun({
        fault: '(security) archive modes and secrets',
        where: 'during and after one migration a→c',
        ok: problems.length === 0,
        outcome: `${modes.join('; ')}; password searched in ${outputs.length} outputs (${outputs
          .filter(([w]) => w.startsWith('dashboard /'))
          .map(([w]) => w.replace('dashboard ', ''))
          .join(', ')})`,
        note: problems.join('; '),
        ms: Date.now() - started,
      });
      assert.deepEqual(problems, []);
    } finally {
      dash?.kill('SIGTERM');
      await stopWorkers(workers);
      await client.close();
      await redis.stop();
      cleanHosts([name], cfg.workDir);
    }
  });
});
