import { strict as assert } from 'node:assert';
import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { coerceError } from '../../src/errors';
import type { MigrationRecord } from '../../src/engine/model';
import { bed, containerState, ferry, makeConfig, mustPodman, podmanOn, removeContainers, startWorkers, stopWorkers, uid, WorkerProc } from '../support/bed';
import { ensureServiceImages, REDIS_IMAGE, RespConnection, sleep } from '../support/services';

/**
 * Issue 12: an established TCP connection kept across a move, where the address moves with the
 * container. A macvlan network on each host's eth0 puts the container on the bed's own subnet,
 * so the network spans hosts a and b, and the container keeps its fixed address on either.
 * Ferry runs with `checkpoint.tcpEstablished` and `checkpoint.keepAddress`. The judge is one
 * client connection opened before the freeze. Every INCR it sends is answered on that same
 * socket, and each reply is one more than the last: no reply lost, nothing applied twice.
 *
 * A second client knocks (opens a connection and drops it) every 20 ms throughout. Before the
 * hold on the destination's address (src/podman/addressHold.ts), every restore had a spell in
 * which the new network answered while CRIU had not yet put the sockets back, and the kernel
 * refused each knock (measured 80 to 385 ms, every time); a retransmission of the kept
 * connection landing there reset it (one move in eight). With the hold, a knock in that spell
 * goes unanswered and is sent again, like any packet during the freeze: none is ever refused.
 */

/** Knocks at address:port every 20 ms until stopped; counts the refusals (a reset for a SYN). */
function knocker(address: string, port: number): { stop: () => Promise<{ knocks: number; refused: number }> } {
  let knocks = 0;
  let refused = 0;
  const pending = new Set<Promise<void>>();
  const timer = setInterval(() => {
    knocks++;
    const p = new Promise<void>((resolve) => {
      const s = connect({ host: address, port });
      const done = (): void => {
        s.destroy();
        resolve();
      };
      s.setTimeout(500, done);
      s.once('connect', done);
      s.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ECONNREFUSED') refused++;
        done();
      });
    });
    pending.add(p);
    void p.then(() => pending.delete(p));
  }, 20);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...pending]);
      return { knocks, refused };
    },
  };
}
const SRC = 'a';
const DST = 'b';
const SUBNET = '198.18.0.0/24';
// Far above the bed hosts' own addresses (198.18.0.11 and on).
const RANGE = '198.18.0.192/27';

describe('connections: an established connection kept where the address moves with the container (macvlan across two hosts)', function () {
  this.timeout(300_000);
  const net = `ferry-span-${uid()}`;
  const name = `span-${uid()}`;
  const address = `198.18.0.${200 + randomInt(20)}`;
  let workers: WorkerProc[] = [];

  before(function () {
    this.timeout(900_000);
    ensureServiceImages();
    for (const h of [SRC, DST]) mustPodman(h, 'network', 'create', '-d', 'macvlan', '-o', 'parent=eth0', '--subnet', SUBNET, '--ip-range', RANGE, net);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers([name]);
    for (const h of [SRC, DST]) podmanOn(h, 'network', 'rm', '-f', net);
  });

  it('moves Redis a -> b while a client keeps one connection: every INCR answered once, in order, on the same socket', async () => {
    const cfg = makeConfig({ top: { checkpoint: { tcpEstablished: true, keepAddress: true } } });
    workers = await startWorkers([SRC, DST], cfg);
    mustPodman(SRC, 'run', '-d', '--name', name, '--network', net, '--ip', address, REDIS_IMAGE);
    let conn: RespConnection | undefined;
    for (let i = 0; !conn; i++) {
      conn = await RespConnection.open(address, 6379, 1000).catch((e: unknown) => (i < 50 ? sleep(100).then(() => undefined) : Promise.reject(coerceError(e))));
    }
    const client = conn;
    const replies: number[] = [];
    let failure: Error | null = null;
    let stop = false;
    // The freeze, the copy and the restore all happen while a request may be waiting: a minute.
    const loop = (async () => {
      while (!stop) {
        try {
          replies.push(Number(await client.command(['INCR', 'k'], 60_000)));
        } catch (e: unknown) {
          failure = coerceError(e);
          return;
        }
        await sleep(100);
      }
    })();
    let knocked = { knocks: 0, refused: 0 };
    let id = '';
    try {
      while (replies.length < 10 && !failure) await sleep(100);
      const knocks = knocker(address, 6379);
      const res = await ferry(cfg, ['migrate', name, '--from', SRC, '--to', DST, '--wait'], { timeoutMs: 240_000 });
      knocked = await knocks.stop();
      assert.equal(res.code, 0, res.stdout + res.stderr);
      assert.match(res.stdout, /succeeded/);
      id = /\b(m-[a-z0-9-]+)/.exec(res.stdout)?.[1] ?? '';
      const after = replies.length;
      const until = Date.now() + 30_000;
      while (replies.length < after + 10 && !failure && Date.now() < until) await sleep(100);
    } finally {
      stop = true;
      await loop;
      client.close();
    }
    assert.equal(failure, null, `the client's connection broke: ${String(failure)} after ${replies.length} replies`);
    assert.ok(knocked.knocks > 50, `the second client knocked throughout (${knocked.knocks})`);
    assert.equal(knocked.refused, 0, `no knock was refused while the container was restored (${knocked.refused} of ${knocked.knocks} were)`);
    const s = await ferry(cfg, ['status', id, '--json']);
    assert.equal(s.code, 0, s.stderr);
    const restored = (JSON.parse(s.stdout) as MigrationRecord).history.find((h) => h.step === 'restore' && h.ok);
    assert.deepEqual((restored?.result as { addressHold?: { held: string[] } } | undefined)?.addressHold?.held, [`${address} on eth0`]);
    assert.deepEqual(
      replies,
      replies.map((_, i) => i + 1),
      'each INCR answered once, in order',
    );
    assert.ok(replies.length >= 20, `the client went on talking after the move (${replies.length} replies)`);
    assert.equal(containerState(DST, name), 'running');
    assert.equal(mustPodman(DST, 'container', 'inspect', '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name), address);
    assert.equal(containerState(SRC, name), null, `${SRC} no longer has it`);
  });

  it('refuses, before the freeze, to keep an address on a network the destination does not have', async () => {
    const cfg = makeConfig({ top: { checkpoint: { tcpEstablished: true, keepAddress: true } } });
    const lonely = `ferry-lonely-${uid()}`;
    const alone = `alone-${uid()}`;
    const own = await startWorkers([SRC, DST], cfg);
    try {
      mustPodman(SRC, 'network', 'create', '--subnet', `10.231.${randomInt(200)}.0/24`, lonely);
      mustPodman(SRC, 'run', '-d', '--name', alone, '--network', lonely, bed().image, 'sleep', '1000');
      const res = await ferry(cfg, ['migrate', alone, '--from', SRC, '--to', DST, '--wait']);
      assert.notEqual(res.code, 0, res.stdout);
      assert.match(res.stdout + res.stderr, new RegExp(`checkpoint.keepAddress is on, so "${alone}" would keep its address on host ${DST}, but host ${DST} has no network "${lonely}"`));
      const id = /\b(m-[a-z0-9-]+)/.exec(res.stdout)?.[1] ?? '';
      const rec = JSON.parse((await ferry(cfg, ['status', id, '--json'])).stdout) as MigrationRecord;
      assert.equal(rec.frozenAt, undefined, 'never frozen');
      assert.equal(containerState(SRC, alone), 'running');
      assert.equal(containerState(DST, alone), null);
    } finally {
      await stopWorkers(own);
      removeContainers([alone]);
      podmanOn(SRC, 'network', 'rm', '-f', lonely);
    }
  });
});
