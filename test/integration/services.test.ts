import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LABEL_SHARED_MOUNTS } from '../../src/steps/movable';
import { containerState, ferry, hostInfo, makeConfig, mustPodman, removeContainers, startWorkers, stopWorkers, uid, WorkerProc } from '../support/bed';
import { countDataMismatches, ensureServiceImages, loadData, REDIS_IMAGE, RespConnection, runRedis, sleep, Writer, WriterOptions } from '../support/services';
import { itExtended } from '../support/tier';

// About 32 MB in Redis's memory: enough that the migration moves real data, small enough
// that the test stays short.
const DATA_KEYS = 30_000;
// Two bed hosts; FERRY_TEST_SERVICE_HOSTS=f,g runs it beside a campaign that holds a..c.
const [SRC = 'a', DST = 'b'] = (process.env.FERRY_TEST_SERVICE_HOSTS ?? 'a,b').split(',');
const DATA_SIZE = 1000;

async function openWhenReady(address: string, port: number, withinMs: number): Promise<RespConnection> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      const conn = await RespConnection.open(address, port);
      if ((await conn.command(['PING'])) === 'PONG') return conn;
      conn.close();
    } catch (e: unknown) {
      if (Date.now() > until) throw e;
    }
    await sleep(100);
  }
}

async function answers(address: string, port: number): Promise<boolean> {
  try {
    const conn = await RespConnection.open(address, port, 1000);
    const pong = await conn.command(['PING']).catch(() => null);
    conn.close();
    return pong === 'PONG';
  } catch {
    return false;
  }
}

/**
 * Moves a redis-server holding data from a to b while `writer` writes, then judges by what
 * the client saw: every acknowledged write is there with its value, none applied twice, the
 * data intact, the service on b only.
 */
interface Scenario {
  checkpoint: Record<string, unknown>;
  writer: Pick<WriterOptions, 'connectionPerWrite' | 'replyTimeoutMs' | 'pauseMs'>;
  /** Extra `podman run` options (mounts, labels). */
  podman?: string[];
  /** More checks on b once the writes are judged (the writer has stopped). */
  then?: (ctx: { name: string; address: string; port: number; acked: number[] }) => Promise<void>;
}

async function moveRedisUnderWrites({ checkpoint, writer, podman, then }: Scenario): Promise<void> {
  const cfg = makeConfig({ top: { checkpoint } });
  const workers: WorkerProc[] = await startWorkers([SRC, DST], cfg);
  const name = `redis-${uid()}`;
  const port = 19000 + Math.floor(Math.random() * 1000);
  const a = hostInfo(SRC).address;
  const b = hostInfo(DST).address;
  try {
    runRedis(SRC, name, port, { podman });
    const loader = await openWhenReady(a, port, 15_000);
    await loadData(loader, DATA_KEYS, DATA_SIZE);
    loader.close();

    const w = new Writer({ addresses: [a, b], port, ...writer });
    w.start();
    // Only asynchronous work from here until the writer stops: a synchronous podman call
    // would stall the writer's event loop and show up as downtime.
    await sleep(1500);
    const t0 = Date.now();
    const res = await ferry(cfg, ['migrate', name, '--from', SRC, '--to', DST, '--wait'], { timeoutMs: 240_000 });
    const migrateMs = Date.now() - t0;
    // Keep writing until the writer has been served by b for a while.
    const until = Date.now() + 20_000;
    while (Date.now() < until && w.acks.filter((k) => k.host === b).length < 200) await sleep(100);
    await sleep(500);
    await w.stop();

    const gap = w.longestGap();
    const onA = w.acks.filter((k) => k.host === a).length;
    const onB = w.acks.length - onA;
    const ferryDowntime = /downtime:\s*(.*)/.exec(res.stdout)?.[1] ?? 'not reported';
    console.log(
      `      migrate ${migrateMs} ms; client: ${w.acks.length} acknowledged writes (${onA} on a, ${onB} on b), ${w.unknown.length} unanswered, ${w.connects} connections; ` +
        `longest gap between acknowledged writes ${gap.ms} ms (ferry: ${ferryDowntime}); errors seen: ${w.errors.join(' | ') || 'none'}`,
    );
    assert.equal(res.code, 0, `ferry migrate failed:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /state:\s+succeeded/);
    assert.ok(onA > 0 && onB > 0, `the client wrote on a before and on b after (${onA} / ${onB})`);

    // The data is on exactly one host: b runs the service, a has neither the container nor an answer.
    assert.equal(containerState(SRC, name), null, `${SRC} no longer has the container`);
    assert.equal(containerState(DST, name), 'running');
    assert.equal(await answers(a, port), false, 'nothing answers on a');
    const conn = await openWhenReady(b, port, 5000);
    try {
      assert.equal(await countDataMismatches(conn, DATA_KEYS, DATA_SIZE), 0, 'every data key arrived with its value');

      const values = new Map<number, string | null>();
      for (let start = 1; start <= w.attempted; start += 1000) {
        const ids: number[] = [];
        for (let id = start; id <= Math.min(w.attempted, start + 999); id++) ids.push(id);
        const got = await conn.command(['MGET', ...ids.map((id) => `w:${id}`)], 10_000);
        assert.ok(Array.isArray(got));
        ids.forEach((id, i) => values.set(id, got[i] as string | null));
      }
      const lost = w.acks.filter((k) => values.get(k.id) !== '1').map((k) => k.id);
      assert.deepEqual(lost, [], 'every acknowledged write is on b with its value');
      const twice = [...values].filter(([, v]) => v !== null && v !== '1').map(([id, v]) => `w:${id}=${v}`);
      assert.deepEqual(twice, [], 'no write was applied twice');
      const applied = [...values.values()].filter((v) => v !== null).length;
      const total = Number(await conn.command(['GET', 'total']));
      assert.equal(total, applied, 'the transaction counter agrees with the writes present');
      assert.ok(applied >= w.acks.length && applied <= w.attempted, `applied ${applied}: between acknowledged ${w.acks.length} and sent ${w.attempted}`);
      // Redis applied them in the order they were acknowledged: nothing acknowledged was rolled back and redone.
      w.acks.forEach((k, i) => {
        if (i > 0) assert.ok(k.total > w.acks[i - 1].total, `write ${k.id} came after write ${w.acks[i - 1].id}`);
      });
      const unanswered = w.unknown.map((id) => `w:${id}=${values.get(id) ?? 'absent'}`);
      console.log(`      unanswered writes on b: ${unanswered.join(', ') || 'none'}; keys on b: ${String(await conn.command(['DBSIZE']))}`);
      assert.equal(await conn.command(['DBSIZE']), DATA_KEYS + applied + 1, 'no other keys appeared');
      if (then) await then({ name, address: b, port, acked: w.acks.map((k) => k.id) });
    } finally {
      conn.close();
    }
  } finally {
    await stopWorkers(workers);
    removeContainers([name]);
  }
}

describe('a real Redis moves while a client writes, judged by what the client saw', function () {
  // A cold scripts/images.sh (debootstrap + apt) takes about a minute; warm it is instant.
  this.timeout(600_000);

  before(() => {
    ensureServiceImages();
    const ids = [SRC, DST].map((h) => mustPodman(h, 'image', 'inspect', '--format', '{{.Id}}', REDIS_IMAGE));
    assert.equal(ids[0], ids[1], 'the same Redis image ID on a and b');
  });

  // One long-lived connection: its established socket needs checkpoint.tcpEstablished (else
  // CRIU refuses: "Connected TCP socket"), and preflight wants keepAddress with it. The client
  // reaches the service through a's published port, so the socket restored on b is out of its
  // reach: the client sees silence until its reply timeout, then reconnects to b.
  itExtended(`moves 32 MB of Redis ${SRC} -> ${DST}: no acknowledged write lost, none applied twice, served on ${DST} only`, async () => {
    await moveRedisUnderWrites({ checkpoint: { tcpEstablished: true, keepAddress: true }, writer: { connectionPerWrite: false, replyTimeoutMs: 2500, pauseMs: 0 } });
  });

  // Redis keeps its append-only file in /data, a bind mount of a folder both hosts see (here a
  // folder of the machine's own file system, which every bed host shares), declared shared by
  // label. After the move, Redis on b restarts from that file with every acknowledged write.
  itExtended(`moves Redis with its AOF on a shared bind mount ${SRC} -> ${DST}: a restart on ${DST} finds every acknowledged write`, async () => {
    const dir = mkdtempSync('/var/tmp/ferry-shared-redis-');
    try {
      await moveRedisUnderWrites({
        checkpoint: { tcpEstablished: true, keepAddress: true },
        writer: { connectionPerWrite: false, replyTimeoutMs: 2500, pauseMs: 0 },
        podman: ['-v', `${dir}:/data`, '--label', `${LABEL_SHARED_MOUNTS}=/data`],
        then: async ({ name, address, port, acked }) => {
          assert.ok(existsSync(join(dir, 'appendonlydir')), 'the AOF is in the shared folder');
          mustPodman(DST, 'restart', '-t', '10', name);
          const conn = await openWhenReady(address, port, 30_000);
          try {
            const missing: number[] = [];
            for (let i = 0; i < acked.length; i += 1000) {
              const ids = acked.slice(i, i + 1000);
              const got = await conn.command(['MGET', ...ids.map((id) => `w:${id}`)], 10_000);
              assert.ok(Array.isArray(got));
              ids.forEach((id, j) => {
                if (got[j] !== '1') missing.push(id);
              });
            }
            assert.deepEqual(missing, [], 'after the restart on b, every acknowledged write was read back from the AOF');
            assert.equal(await countDataMismatches(conn, DATA_KEYS, DATA_SIZE), 0, 'and all the data');
          } finally {
            conn.close();
          }
        },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // With the default settings (checkpoint.skipInFlight) CRIU leaves established and
  // half-open connections out of the dump and the source's kernel closes them: a client
  // holding one sees a reset and reconnects, one that connects per write sees refusals until
  // the destination answers. Either way no acknowledged write is lost or applied twice.
  it(`moves Redis ${SRC} -> ${DST} with default settings under a client holding one connection (closed cleanly, the client reconnects)`, async () => {
    await moveRedisUnderWrites({ checkpoint: {}, writer: { connectionPerWrite: false, replyTimeoutMs: 2500, pauseMs: 0 } });
  });

  itExtended(`moves Redis ${SRC} -> ${DST} with default settings under a client that opens a connection per write`, async () => {
    await moveRedisUnderWrites({ checkpoint: {}, writer: { connectionPerWrite: true, replyTimeoutMs: 2500, pauseMs: 10 } });
  });
});
