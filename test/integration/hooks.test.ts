import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bed, containerState, ferry, hostInfo, makeConfig, migrationId, record, readCounter, removeContainers, runCounter, runHttpd, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import { counterAt } from '../support/faults';
import { itExtended } from '../support/tier';

/** An HTTP endpoint on the bed's bridge, where workers in every host's namespace reach it; it answers `status`. */
async function hookServer(status: number): Promise<{ server: Server; url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(body));
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'load balancer says no');
    });
  });
  await new Promise<void>((r) => server.listen(0, bed().bridgeAddress, r));
  return { server, url: `http://${bed().bridgeAddress}:${(server.address() as AddressInfo).port}/cutover`, bodies };
}

/** Issue 12, cut-over hooks: after verify and before cleanup, hooks are told where the container now runs. */
describe('cut-over hooks: commands on a third host', function () {
  this.timeout(180_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const name = `hk-cmd-${uid()}`;
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const out = `/tmp/ferry-hook-${uid()}.json`;

  before(async () => {
    // Two hooks, in order: the details as the hook sees them, then where it ran (c's addresses).
    const cutover = [
      { kind: 'command', host: 'c', argv: ['tee', out] },
      { kind: 'command', host: 'c', argv: ['sh', '-c', 'ip -4 -o addr show > "$1"', 'where', `${out}.where`] },
    ];
    cfg = makeConfig({ top: { hooks: { cutover } } });
    workers = await startWorkers(['a', 'b'], cfg);
    runHttpd('a', name, port);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers([name]);
    for (const f of [out, `${out}.where`]) rmSync(f, { force: true });
  });

  it('gives the hook the migration’s details on its stdin; the migration succeeds', async () => {
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    const id = migrationId(res.stdout);
    const rec = await record(cfg, id);
    assert.equal(rec.state, 'succeeded');
    assert.ok(existsSync(out), `the hook wrote ${out}`);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), {
      migrationId: id,
      container: name,
      from: 'a',
      to: 'b',
      fromAddress: hostInfo('a').address,
      toAddress: hostInfo('b').address,
      ports: [{ hostPort: port, protocol: 'tcp' }],
      attempt: 1,
    });
    assert.match(readFileSync(`${out}.where`, 'utf8'), new RegExp(`inet ${hostInfo('c').address.replace(/\./g, '\\.')}/`), 'the hook ran on c');
    // Cut-over came after verify and before cleanup, once, on the source's worker.
    const steps = rec.history.filter((h) => h.ok).map((h) => `${h.step}@${h.host}`);
    assert.deepEqual(steps.slice(-3), ['verify@b', 'cutover@a', 'cleanup@a']);
    assert.equal(containerState('b', name), 'running');
    assert.equal(containerState('a', name), null);
  });
});

describe('cut-over hooks: a failing HTTP hook', function () {
  this.timeout(240_000);
  let failing: Awaited<ReturnType<typeof hookServer>>;
  let workers: WorkerProc[] = [];
  const names: string[] = [];

  before(async () => {
    failing = await hookServer(500);
  });

  afterEach(async () => {
    await stopWorkers(workers);
    workers = [];
  });

  after(() => {
    removeContainers(names);
    failing.server.closeAllConnections();
    failing.server.close();
  });

  it('with onFailure "rollback": rolls back, the container runs on the source with its memory', async () => {
    const name = `hk-rb-${uid()}`;
    names.push(name);
    const cfg = makeConfig({ top: { hooks: { cutover: [{ kind: 'http', url: failing.url }], onFailure: 'rollback' } } });
    workers = await startWorkers(['a', 'b'], cfg);
    runCounter('a', name);
    const before = await counterAt('a', name);
    const seenBefore = failing.bodies.length;
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'none']);
    assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /state:\s+failed-rolled-back/);
    assert.match(res.stdout, /cutover failed on host a: cut-over hook 1 of 1 \(http POST http:\/\/[\d.:]+\/cutover\) failed: HTTP 500 Internal Server Error: load balancer says no; the migration rolls back/);
    const rec = await record(cfg, migrationId(res.stdout));
    assert.equal(rec.state, 'failed-rolled-back');
    // Failing for good is the policy: one call, no retries of the hook.
    assert.equal(failing.bodies.length - seenBefore, 1, 'the hook was called once');
    assert.equal((failing.bodies[failing.bodies.length - 1] as { container: string }).container, name);
    assert.deepEqual(
      rec.history.map((h) => `${h.step}:${h.ok}`),
      ['preflight:true', 'checkpoint:true', 'transfer:true', 'restore:true', 'verify:true', 'cutover:false', 'rollback:true'],
    );

    assert.equal(containerState('a', name), 'running', 'runs on a again');
    assert.equal(containerState('b', name), null, 'the verified copy on b was removed');
    const after = readCounter('a', name);
    assert.equal(after.token, before.token, 'same process, not a restart');
    assert.ok(after.count > before.count, `counter continued on a: ${before.count} -> ${after.count}`);
  });

  itExtended('with onFailure "continue": succeeds, and the record carries a warning', async () => {
    const name = `hk-go-${uid()}`;
    names.push(name);
    const cfg = makeConfig({ top: { hooks: { cutover: [{ kind: 'http', url: failing.url }], onFailure: 'continue' } } });
    workers = await startWorkers(['a', 'b'], cfg);
    runCounter('a', name);
    const before = await counterAt('a', name);
    const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'none']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /warning: cut-over hook 1 of 1 \(http POST http:\/\/[\d.:]+\/cutover\) failed: HTTP 500 .*the migration went on \(hooks\.onFailure is "continue"\)/);
    const rec = await record(cfg, migrationId(res.stdout));
    assert.equal(rec.state, 'succeeded');
    assert.equal(rec.warnings.filter((w) => w.startsWith('cut-over hook 1 of 1')).length, 1, rec.warnings.join('\n'));
    assert.equal(containerState('b', name), 'running');
    assert.equal(containerState('a', name), null);
    assert.equal(readCounter('b', name).token, before.token);
  });
});
