import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ferry, OUTPUT, startWorker } from '../support/bed';
import { faultConfig, OwnRedis, ownRedis, recordRun, RUNS, sleep, usingRedis } from '../support/faults';
import { restartMidBatch } from './redisFaults';

describe('faults: Redis restarted or crashed in the middle of a batch', function () {
  this.timeout(300_000);
  for (let i = 1; i <= RUNS; i++) {
    const run = RUNS > 1 ? ` (run ${i}/${RUNS})` : '';
    it(`restart (SIGTERM) mid-batch: every migration still ends right${run}`, () => restartMidBatch('SIGTERM'));
    it(`crash (SIGKILL) mid-batch: every migration still ends right${run}`, () => restartMidBatch('SIGKILL'));
  }
});

describe('faults: a Redis that may evict keys is refused at start-up', function () {
  this.timeout(60_000);
  let redis: OwnRedis;
  before(async () => {
    redis = await ownRedis({ 'maxmemory-policy': 'allkeys-lru', maxmemory: '64mb' });
  });
  after(() => redis.stop());

  it('the worker will not start and says which setting to change; config check says so too', async () => {
    const started = Date.now();
    const cfg = usingRedis(faultConfig(), redis);
    const problems: string[] = [];
    const starting = startWorker('a', cfg).then(
      (w) => w,
      (e: unknown) => e as Error,
    );
    // The worker logs its refusal; whether the process then exits is checked separately.
    const log = join(OUTPUT, `${cfg.prefix}-worker-a.log`);
    let text = '';
    for (let i = 0; i < 100 && !text.includes('ferry: error'); i++) {
      await sleep(200);
      text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    }
    assert.match(text, /maxmemory-policy is "allkeys-lru".*requires "noeviction"/);
    let exited = false;
    for (let i = 0; i < 50 && !exited; i++) {
      exited = (await Promise.race([starting, sleep(200).then(() => null)])) instanceof Error;
    }
    if (!exited) {
      problems.push('the refusing worker printed its error but did not exit (still running 10 s later)');
      // Ours to end: the worker process started for this config.
      for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        try {
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(cfg.file)) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
    const check = await ferry(cfg, ['config', 'check']);
    if (check.code === 0) problems.push('`ferry config check` exits 0');
    if (!check.stderr.includes('noeviction')) problems.push('`ferry config check` does not name noeviction');
    if ((check.stdout + check.stderr).includes(redis.password)) problems.push('password printed by config check');
    recordRun({
      fault: 'Redis with maxmemory-policy allkeys-lru',
      where: 'worker start-up and `ferry config check`',
      ok: problems.length === 0,
      outcome: 'worker refuses to serve, naming noeviction; config check fails',
      note: problems.join('; '),
      ms: Date.now() - started,
    });
    assert.deepEqual(problems, []);
  });
});
