import { FORWARD_STEPS } from '../../src/engine/steps';
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerState, ferry, hostInfo, httpGet, makeConfig, OUTPUT, podmanOn, readCounter, removeContainers, runCounter, runHttpd, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import { counterAt } from '../support/faults';
import { itExtended } from '../support/tier';

// Host d belongs to these tests alone: a drain moves every container running there.
const HOSTS = ['b', 'c', 'd'];

interface Rec {
  id: string;
  container: string;
  state: string;
  to: string;
  history: { startedAt: number; finishedAt?: number }[];
}
interface View {
  batch: { id: string; state: string; scheduleId?: string };
  items: { item: { container: string; to: string }; migration: Rec | null }[];
}

function running(host: string): string[] {
  return podmanOn(host, 'ps', '--format', '{{.Names}}').stdout.split('\n').filter(Boolean);
}

/** Largest number of migrations whose [first step start, last step end] overlap at one instant. */
function maxOverlap(recs: Rec[]): number {
  const points: [number, number][] = [];
  for (const r of recs) {
    points.push([Math.min(...r.history.map((h) => h.startedAt)), 1]);
    points.push([Math.max(...r.history.map((h) => h.finishedAt ?? Date.now())), -1]);
  }
  points.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (now += d));
  return max;
}

async function batchView(cfg: TestConfig, id: string): Promise<View> {
  const r = await ferry(cfg, ['batches', id, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as View;
}

describe('fleet: drains, batches, schedules (hosts b, c, d)', function () {
  this.timeout(300_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const names: string[] = [];
  const tag = `fl${uid()}`;

  function capacityFor(room: Record<string, number>): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [h, n] of Object.entries(room)) out[h] = { capacity: { containers: running(h).length + n } };
    return out;
  }

  beforeEach(() => {
    assert.deepEqual(running('d'), [], 'host d starts empty');
  });

  afterEach(async () => {
    await stopWorkers(workers);
    workers = [];
    removeContainers(names.splice(0));
    if (cfg) await ferry(cfg, ['undrain', 'd']);
  });

  itExtended('drains d (6 containers) to b and c, never more than 2 at once, within capacity, state intact', async () => {
    cfg = makeConfig({ hosts: capacityFor({ b: 3, c: 3 }) });
    workers = await startWorkers(HOSTS, cfg);
    const ports: Record<string, number> = {};
    for (let i = 0; i < 3; i++) {
      const web = `${tag}-web${i}`;
      ports[web] = 18500 + Math.floor(Math.random() * 400) + i * 7;
      runHttpd('d', web, ports[web]);
      const counter = `${tag}-count${i}`;
      runCounter('d', counter);
      names.push(web, counter);
    }
    const before: Record<string, { token: string; count: number }> = {};
    for (const n of names.filter((x) => x.includes('count'))) before[n] = await counterAt('d', n);

    const res = await ferry(cfg, ['drain', 'd', '--to', 'b,c', '--max-parallel', '2', '--wait']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /6 done, 0 running, 0 failed, 0 remaining/);
    const id = /batch (b-[a-z0-9]+-[a-f0-9]+)/.exec(res.stdout)?.[1] ?? '';
    const view = await batchView(cfg, id);
    const recs = view.items.map((i) => i.migration).filter((m): m is Rec => m !== null);
    assert.equal(recs.length, 6);
    assert.ok(maxOverlap(recs) <= 2, `at most 2 at once, saw ${maxOverlap(recs)}`);
    assert.deepEqual(running('d'), [], 'd is empty');
    const onB = recs.filter((r) => r.to === 'b').length;
    assert.ok(onB <= 3 && 6 - onB <= 3, `capacity 3 each: b got ${onB}, c got ${6 - onB}`);
    for (const r of recs) {
      assert.equal(containerState(r.to, r.container), 'running', `${r.container} runs on ${r.to}`);
      if (ports[r.container]) assert.equal((await httpGet(hostInfo(r.to).address, ports[r.container]))?.status, 200, `${r.container} answers on ${r.to}`);
      else {
        const after = readCounter(r.to, r.container);
        assert.equal(after.token, before[r.container].token);
        assert.ok(after.count > before[r.container].count, `${r.container} kept counting`);
      }
    }
    const hosts = await ferry(cfg, ['hosts']);
    assert.match(hosts.stdout, /^d\s+\S+\s+CORDONED/m, 'd stays cordoned after its drain');

    // After the maintenance: everything comes home, still with its memory.
    const back = await ferry(cfg, ['undrain', 'd', '--move-back', '--wait']);
    assert.equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
    assert.match(back.stdout, /6 done, 0 running, 0 failed, 0 remaining/);
    assert.deepEqual(running('d').sort(), [...names].sort(), 'all six are back on d');
    for (const n of names.filter((x) => x.includes('count'))) assert.equal(readCounter('d', n).token, before[n].token);
  });

  itExtended('--dry-run prints the plan and changes nothing', async () => {
    cfg = makeConfig();
    workers = await startWorkers(HOSTS, cfg);
    const a = `${tag}-dry`;
    names.push(a);
    runCounter('d', a);
    // d is ours entirely; on b and c only our own containers count (other suites share them).
    const snap = () =>
      HOSTS.map(
        (h) =>
          `${h}:${running(h)
            .filter((x) => h === 'd' || x.includes(tag))
            .sort()
            .join(',')}`,
      ).join(' ');
    const before = snap();
    const res = await ferry(cfg, ['drain', 'd', '--dry-run']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`move\\s+${a}\\s+-> [abc]`));
    assert.equal(snap(), before);
    assert.doesNotMatch((await ferry(cfg, ['hosts'])).stdout, /^d\s+\S+\s+CORDONED/m, 'not cordoned');
  });

  itExtended('refuses a drain without room, naming the containers, before moving anything', async () => {
    cfg = makeConfig({ hosts: capacityFor({ b: 1 }) });
    workers = await startWorkers(HOSTS, cfg);
    const [x, y] = [`${tag}-nr1`, `${tag}-nr2`];
    names.push(x, y);
    runCounter('d', x);
    runCounter('d', y);
    const res = await ferry(cfg, ['drain', 'd', '--to', 'b', '--wait']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /drain of d refused, nothing was changed: no room for/);
    assert.match(res.stderr, new RegExp(`${x}|${y}`));
    assert.deepEqual(running('d').sort(), [x, y].sort());
    assert.doesNotMatch((await ferry(cfg, ['hosts'])).stdout, /^d\s+\S+\s+CORDONED/m);
  });

  it('cancel in the middle of a batch: no container lost or doubled', async () => {
    cfg = makeConfig();
    workers = await startWorkers(HOSTS, cfg);
    const list = [0, 1, 2, 3].map((i) => `${tag}-cx${i}`);
    names.push(...list);
    for (const n of list) runCounter('d', n);
    const tokens: Record<string, string> = {};
    for (const n of list) tokens[n] = (await counterAt('d', n)).token;
    const plan = join(OUTPUT, `${cfg.prefix}-plan.yaml`);
    writeFileSync(plan, `maxParallel: 1\nmigrations:\n${list.map((n) => `  - {container: ${n}, from: d, to: b}`).join('\n')}\n`);
    const start = await ferry(cfg, ['batch', plan]);
    assert.equal(start.code, 0, start.stderr);
    const id = start.stdout.trim();
    for (let i = 0; i < 200; i++) {
      const v = await batchView(cfg, id);
      if (v.items.some((it) => it.migration?.state === 'succeeded')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const cancel = await ferry(cfg, ['cancel', id]);
    assert.equal(cancel.code, 0, cancel.stderr);
    let view = await batchView(cfg, id);
    for (let i = 0; i < 300 && view.batch.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      view = await batchView(cfg, id);
    }
    assert.equal(view.batch.state, 'cancelled');
    const moved = view.items.filter((i) => i.migration?.state === 'succeeded').length;
    assert.ok(moved >= 1 && moved < 4, `some moved, not all (moved ${moved})`);
    for (const n of list) {
      const where = ['d', 'b'].filter((h) => containerState(h, n) === 'running');
      assert.equal(where.length, 1, `${n} runs on exactly one host (${where.join(',') || 'none'})`);
      assert.equal(readCounter(where[0], n).token, tokens[n], `${n} kept its memory`);
    }
  });

  itExtended('a batch whose workers are all killed resumes when they come back, doing nothing twice', async () => {
    cfg = makeConfig();
    workers = await startWorkers(HOSTS, cfg);
    const list = [0, 1, 2].map((i) => `${tag}-rs${i}`);
    names.push(...list);
    for (const n of list) runCounter('d', n);
    const tokens: Record<string, string> = {};
    for (const n of list) tokens[n] = (await counterAt('d', n)).token;
    const plan = join(OUTPUT, `${cfg.prefix}-resume.json`);
    writeFileSync(plan, JSON.stringify({ maxParallel: 1, migrations: list.map((n) => ({ container: n, from: 'd', to: 'b' })) }));
    const start = await ferry(cfg, ['batch', plan]);
    const id = start.stdout.trim();
    for (let i = 0; i < 300; i++) {
      if ((await batchView(cfg, id)).items.some((it) => it.migration?.state === 'succeeded')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Every Ferry process of this test dies at once, mid-batch.
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await new Promise((r) => setTimeout(r, 1000));
    workers = await startWorkers(HOSTS, cfg);
    let view = await batchView(cfg, id);
    for (let i = 0; i < 600 && view.batch.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      view = await batchView(cfg, id);
    }
    assert.equal(view.batch.state, 'done');
    for (const { item, migration } of view.items) {
      assert.equal(migration?.state, 'succeeded', `${item.container}: ${migration?.state}`);
      assert.equal(containerState('b', item.container), 'running');
      assert.equal(containerState('d', item.container), null, 'not on d any more');
      assert.equal(readCounter('b', item.container).token, tokens[item.container]);
      const steps = (migration?.history ?? []).filter((h) => h.finishedAt !== undefined && (h as { ok?: boolean }).ok).length;
      assert.ok(steps <= FORWARD_STEPS.length, `${item.container}: ${steps} successful steps (${FORWARD_STEPS.length} expected, none twice)`);
    }
  });

  it('a scheduled drain fires on time with no restart; a cancelled one never runs', async () => {
    cfg = makeConfig();
    workers = await startWorkers(HOSTS, cfg);
    const n = `${tag}-sched`;
    names.push(n);
    runCounter('d', n);
    // The drain to be cancelled is scheduled first and cancelled two commands later, long
    // before its time (about half a second a command); the one that runs is scheduled only
    // after that cancel, for a time past the cancelled one's, so once it has fired the
    // cancelled one's time has passed too and there is nothing else to wait for.
    const cancelledAt = new Date(Date.now() + 20_000);
    const doomed = await ferry(cfg, ['drain', 'd', '--to', 'c', '--at', cancelledAt.toISOString(), '--json']);
    assert.equal(doomed.code, 0, doomed.stderr);
    const doomedId = (JSON.parse(doomed.stdout) as { scheduleId: string }).scheduleId;
    const listed = await ferry(cfg, ['schedules']);
    assert.match(listed.stdout, new RegExp(`${doomedId}\\s+drain d -> c`));
    assert.equal((await ferry(cfg, ['schedules', 'cancel', doomedId])).code, 0);
    assert.doesNotMatch((await ferry(cfg, ['schedules'])).stdout, new RegExp(doomedId));
    const at = new Date(Math.max(cancelledAt.getTime(), Date.now() + 5000) + 1000);
    const scheduled = await ferry(cfg, ['drain', 'd', '--to', 'b', '--at', at.toISOString()]);
    assert.equal(scheduled.code, 0, scheduled.stderr);

    let firedAt = 0;
    for (let i = 0; i < 200 && !firedAt; i++) {
      await new Promise((r) => setTimeout(r, 500));
      if (containerState('b', n) === 'running') firedAt = Date.now();
    }
    assert.ok(firedAt >= at.getTime(), 'not before its time');
    assert.ok(firedAt - at.getTime() < 30_000, `on time (${firedAt - at.getTime()} ms late)`);
    assert.equal(containerState('c', n), null, 'the cancelled drain never ran');
    const batches = JSON.parse((await ferry(cfg, ['batches', '--json'])).stdout) as { scheduleId?: string }[];
    assert.equal(batches.length, 1, 'exactly one drain ran');
  });
});
