import { strict as assert } from 'node:assert';
import { connect, Socket } from 'node:net';
import type { MigrationRecord } from '../../src/engine/model';
import { bed, containerState, ferry, hostInfo, httpGet, makeConfig, mustPodman, removeContainers, startWorker, startWorkers, stopWorkers, TestConfig, uid, variant, WorkerProc } from '../support/bed';
import { describeExtended } from '../support/tier';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client opening a connection every few ms to wherever the service is, as a busy service's clients do. */
class ConnectionLoad {
  target: string;
  readonly seen = { opened: 0, answered: 0, refused: 0, reset: 0, other: 0 };
  private readonly timer: NodeJS.Timeout;
  private readonly open = new Set<Socket>();

  constructor(address: string, port: number, everyMs: number) {
    this.target = address;
    this.timer = setInterval(() => {
      this.seen.opened++;
      const s = connect(port, this.target);
      this.open.add(s);
      let got = '';
      s.setTimeout(3000, () => s.destroy());
      s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('end', () => (got.startsWith('HTTP/1') ? this.seen.answered++ : this.seen.other++));
      s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' ? this.seen.refused++ : e.code === 'ECONNRESET' ? this.seen.reset++ : this.seen.other++));
      s.on('close', () => this.open.delete(s));
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const s of this.open) s.destroy();
  }
}

/**
 * A client in the middle of a request at the freeze: connected, half its request sent (busybox
 * httpd waits for the rest). What it sees is the judge: a close (FIN or reset) it can act on
 * at once, not silence.
 */
function holdConnection(address: string, port: number): Promise<{ socket: Socket; outcome: Promise<{ event: string; atMs: number }> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect(port, address);
    const outcome = new Promise<{ event: string; atMs: number }>((done) => {
      socket.on('end', () => done({ event: 'FIN', atMs: Date.now() - t0 }));
      socket.on('error', (e: NodeJS.ErrnoException) => done({ event: e.code ?? e.message, atMs: Date.now() - t0 }));
    });
    socket.once('error', reject);
    socket.on('connect', () => {
      socket.off('error', reject);
      socket.write('GET / HTTP/1.0\r\n');
      resolve({ socket, outcome });
    });
  });
}

async function record(cfg: TestConfig, id: string): Promise<MigrationRecord> {
  const s = await ferry(cfg, ['status', id, '--json']);
  assert.equal(s.code, 0, s.stderr);
  return JSON.parse(s.stdout) as MigrationRecord;
}

async function answers(address: string, port: number): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    if ((await httpGet(address, port))?.status === 200) return true;
    await sleep(250);
  }
  return false;
}

/**
 * Issue 12: "A service under connection load cannot be moved reliably" (CRIU: "In-flight
 * connection", and "Connected TCP socket" for a request being served at the freeze). With
 * checkpoint.skipInFlight (the default), CRIU skips the first and closes the second, per
 * command (criuConfig.ts). Measured on the bed with a client connecting every 3 ms: plain
 * checkpoints failed 5 of 5, skip-in-flight alone passed 29 of 35, with tcp-close 15 of 15.
 */
describeExtended('connections: a service under connection load moves, and its clients see a clean close', function () {
  this.timeout(240_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const names: string[] = [];

  before(async () => {
    cfg = makeConfig();
    workers = await startWorkers(['a', 'b', 'c'], cfg);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers(names);
  });

  it('moves busybox httpd under a new connection every 3 ms, 3 of 3 at the first freeze; a client mid-request sees the close', async () => {
    const name = `conn-${uid()}`;
    const port = 28000 + Math.floor(Math.random() * 900);
    names.push(name);
    mustPodman('a', 'run', '-d', '--name', name, '-p', `${port}:80`, bed().image, '/bin/httpd', '-f', '-p', '80', '-h', '/www');
    assert.ok(await answers(hostInfo('a').address, port), 'httpd answers on a');
    const load = new ConnectionLoad(hostInfo('a').address, port, 3);
    const hops: [string, string][] = [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'a'],
    ];
    const seen: string[] = [];
    try {
      for (const [from, to] of hops) {
        await sleep(1000);
        const held = await holdConnection(hostInfo(from).address, port);
        const opened = load.seen.opened;
        const res = await ferry(cfg, ['migrate', name, '--from', from, '--to', to, '--wait']);
        assert.equal(res.code, 0, `migration ${from} -> ${to} under load failed:\n${res.stdout}\n${res.stderr}`);
        const id = /migration (m-\S+):/.exec(res.stdout)?.[1];
        assert.ok(id, res.stdout);
        const rec = await record(cfg, id);
        assert.equal(rec.state, 'succeeded');
        const checkpoints = rec.history.filter((h) => h.step === 'checkpoint');
        assert.deepEqual(
          checkpoints.map((h) => h.ok),
          [true],
          `${from} -> ${to}: one freeze, no retry`,
        );
        assert.ok(load.seen.opened - opened > 100, `clients kept connecting during the migration (${load.seen.opened - opened})`);
        load.target = hostInfo(to).address;
        // The close comes with the freeze; a hanging connection would never settle.
        const outcome = await Promise.race([held.outcome, sleep(3000).then(() => ({ event: 'still open 3 s after the migration', atMs: -1 }))]);
        held.socket.destroy();
        seen.push(`${from}->${to}: ${outcome.event}${outcome.atMs >= 0 ? ` after ${outcome.atMs} ms` : ''}`);
        assert.ok(['FIN', 'ECONNRESET'].includes(outcome.event), `the client mid-request on ${from} saw a close, not silence: ${outcome.event}`);
        assert.ok(await answers(hostInfo(to).address, port), `httpd answers on ${to}`);
      }
    } finally {
      load.stop();
      console.log(`      held clients: ${seen.join('; ')}; load: ${JSON.stringify(load.seen)}`);
    }
  });
});

describeExtended('connections: a rollback under connection load restores the source, closed connections and all', function () {
  this.timeout(180_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const name = `conn-rb-${uid()}`;

  before(async () => {
    cfg = makeConfig();
    // As in rollback.test.ts: b's own podman is broken, so the restore fails after the freeze.
    const broken = variant(cfg, { b: { podman: ['podman', '--runtime', '/nonexistent/runc'] } });
    workers = [await startWorker('a', cfg), await startWorker('b', broken)];
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers([name]);
  });

  // CRIU's image of a checkpoint with tcp-close restores only with tcp-close: the in-place
  // restore of the rollback must get the same options as a restore elsewhere.
  it('brings httpd back on a, answering', async () => {
    const port = 28000 + Math.floor(Math.random() * 900);
    mustPodman('a', 'run', '-d', '--name', name, '-p', `${port}:80`, bed().image, '/bin/httpd', '-f', '-p', '80', '-h', '/www');
    assert.ok(await answers(hostInfo('a').address, port), 'httpd answers on a');
    const load = new ConnectionLoad(hostInfo('a').address, port, 3);
    try {
      await sleep(1000);
      const held = await holdConnection(hostInfo('a').address, port);
      const res = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--wait', '--probe', 'none']);
      assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`);
      assert.match(res.stdout, /state:\s+failed-rolled-back/);
      assert.match(res.stdout, /rollback\s+on a attempt 1: ok/);
      const outcome = await Promise.race([held.outcome, sleep(3000).then(() => ({ event: 'still open', atMs: -1 }))]);
      held.socket.destroy();
      assert.ok(['FIN', 'ECONNRESET'].includes(outcome.event), `the client mid-request saw a close: ${outcome.event}`);
    } finally {
      load.stop();
    }
    assert.equal(containerState('a', name), 'running');
    assert.ok(await answers(hostInfo('a').address, port), 'httpd answers on a again');
  });
});
