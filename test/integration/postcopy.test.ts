import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { LocalRunner } from '../../src/exec/localRunner';
import type { CommandResult, CommandRunner, RunOptions } from '../../src/exec/runner';
import { SshRunner } from '../../src/ssh/sshRunner';
import {
  abortLazyRestore,
  finishOnSource,
  installLazyRuntime,
  LazyCheckpoint,
  LazyMigration,
  lazyRestore,
  openPageTunnel,
  pathsOf,
  prepareLazyCheckpoint,
  probeLazySupport,
  raisePipeMaxSize,
  readLazyCopy,
  removeLazyFiles,
  restorePipeMaxSize,
  rollbackInPlace,
  serveLazyPages,
  SPLIT_SCRIPT,
  stopPageServer,
  SshTarget,
  waitAllPagesCopied,
  closePageTunnel,
} from '../../src/postcopy';
import { bed, containerState, hostInfo, onHost, podmanOn, uid } from '../support/bed';
import { describeExtended } from '../support/tier';
import { counter, memoryMd5, sh, startWorkload as startOn } from '../support/memoryWorkload';
import { slowPageTunnel } from '../support/slowTunnel';

const startWorkload = (name: string) => startOn(SRC, name);

/*
 * Post-copy through podman on the real bed, two hosts only, driving src/postcopy directly
 * (not Ferry's steps). The source's commands run through nsenter as its worker would run them
 * locally; the destination's over SSH, as the source's worker reaches it.
 */

// Two bed hosts (c and d: the bed's default hosts are a..d); FERRY_TEST_POSTCOPY_HOSTS=d,e
// runs it beside a nemesis campaign that holds a..c.
const [SRC = 'c', DST = 'd'] = (process.env.FERRY_TEST_POSTCOPY_HOSTS ?? 'c,d').split(',');

/** A runner for commands in one bed host, as that host's own worker would run them. */
function inHost(host: string): CommandRunner {
  const h = hostInfo(host);
  const local = new LocalRunner(`host ${host}`);
  return {
    where: `host ${host}`,
    run: (argv: readonly string[], opts?: RunOptions): Promise<CommandResult> => local.run(['nsenter', `--mount=${h.mountns}`, `--net=${h.netns}`, ...argv], opts),
  };
}

function sshTo(host: string): SshRunner {
  const h = hostInfo(host);
  const b = bed();
  return new SshRunner(
    { name: host, address: h.address, ssh: { port: 22, user: 'root', privateKey: b.ssh.key, knownHosts: b.ssh.knownHosts }, podman: ['podman'], workDir: '/var/lib/ferry/archives', capacity: { containers: 50, memoryMb: 0 } },
    { connectTimeoutMs: 10_000 },
  );
}

function target(host: string): SshTarget {
  const b = bed();
  return { user: 'root', address: hostInfo(host).address, port: 22, privateKey: b.ssh.key, knownHosts: b.ssh.knownHosts };
}

let nextPort = 30000 + Math.floor(Math.random() * 5000);
function migration(): LazyMigration {
  nextPort += 2;
  return { migrationId: `pc-${uid()}`, serverPort: nextPort, lazyPort: nextPort + 1, deadlineSeconds: 300 };
}

interface Moved {
  m: LazyMigration;
  ck: LazyCheckpoint;
  archive: string;
}

/** Everything up to the restore's start: install, tunnel, freeze + split + export, serve, ship. */
async function freezeAndShip(src: CommandRunner, name: string, m: LazyMigration): Promise<Moved> {
  const dst = sshTo(DST);
  try {
    const split = { node: process.execPath, splitScript: SPLIT_SCRIPT };
    await installLazyRuntime(src, m, split);
    await installLazyRuntime(dst, m, split);
    await raisePipeMaxSize(src, m);
    await openPageTunnel(src, m, target(DST));
    const archive = `${pathsOf(m).dir}/checkpoint.tar`;
    const ck = await prepareLazyCheckpoint({ runner: src }, m, { container: name, archive, compression: 'none' });
    await serveLazyPages(src, m, ck.keepDir ?? '');
    const b = bed();
    const scp = await src.run(['scp', '-q', '-o', 'BatchMode=yes', '-i', b.ssh.key, '-o', `UserKnownHostsFile=${b.ssh.knownHosts}`, archive, `root@${hostInfo(DST).address}:${archive}`]);
    assert.equal(scp.code, 0, scp.stderr);
    return { m, ck, archive };
  } finally {
    dst.close();
  }
}

/** Files of the migration left on a host, and (the bed's hosts share one pid namespace) any process still naming its folder. */
async function leftovers(host: string, m: LazyMigration): Promise<string> {
  const files = onHost(host, ['ls', '-A', pathsOf(m).dir]).stdout.trim();
  let procs: string[] = [];
  for (let i = 0; i < 30; i++) {
    procs = readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map((e) => {
        try {
          return readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
        } catch {
          return '';
        }
      })
      .filter((c) => c.includes(pathsOf(m).dir));
    if (procs.length === 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return [files, ...procs].filter(Boolean).join('\n');
}

describeExtended(`post-copy through podman (hosts ${SRC} and ${DST})`, function () {
  this.timeout(300_000);
  const started: { name: string; m: LazyMigration }[] = [];
  let pipeBefore = '';

  before(async function () {
    const hosts = bed().hosts.map((h) => h.name);
    if (!hosts.includes(SRC) || !hosts.includes(DST)) this.skip();
    pipeBefore = onHost(SRC, ['cat', '/proc/sys/fs/pipe-max-size']).stdout.trim();
    const src = await probeLazySupport(inHost(SRC), 'source', { node: process.execPath, script: SPLIT_SCRIPT });
    const dst = await probeLazySupport(inHost(DST), 'destination');
    assert.ok(src.ok, `source cannot: ${src.reasons.join('; ')}`);
    assert.ok(dst.ok, `destination cannot: ${dst.reasons.join('; ')}`);
  });

  // Whatever a failed test left: no copy may keep waiting for pages, no server or tunnel may stay.
  after(async () => {
    const src = inHost(SRC);
    const dst = inHost(DST);
    for (const { name, m } of started) {
      await abortLazyRestore({ runner: dst }, m, name, { evenIfComplete: true }).catch(() => undefined);
      await stopPageServer(src, m).catch(() => undefined);
      for (const h of [SRC, DST]) podmanOn(h, 'rm', '-f', '-t', '0', name);
      await closePageTunnel(src, m, target(DST)).catch(() => undefined);
      await restorePipeMaxSize(src, m).catch(() => undefined);
      await removeLazyFiles(src, m).catch(() => undefined);
      await removeLazyFiles(dst, m).catch(() => undefined);
    }
  });

  it(`moves a counter holding 64 MB from ${SRC} to ${DST} lazily: same process, same memory, runs only on ${DST}, nothing left behind`, async () => {
    const name = `pc-ok-${uid()}`;
    const m = migration();
    started.push({ name, m });
    const src = inHost(SRC);
    const before = await startWorkload(name);
    const { ck, archive } = await freezeAndShip(src, name, m);
    assert.equal(ck.mode, 'lazy');
    assert.equal(sh(SRC, 'cmp "$1"/pages-1.img "$2"/pages-1.img && echo same', ck.imagesDir, ck.keepDir ?? ''), 'same', "podman's checkpoint folder is whole again");
    assert.ok((ck.split?.lazyPages ?? 0) > 10_000, `most pages are left for later: ${JSON.stringify(ck.split)}`);
    const size = Number(sh(SRC, 'stat -c %s "$1"', archive));
    assert.ok(size < 4_000_000, `the archive holds no lazy pages: ${size} bytes`);

    const dst = sshTo(DST);
    try {
      await lazyRestore({ runner: dst }, m, { archive, extra: ['--ignore-static-ip', '--ignore-static-mac'], timeoutMs: 120_000 });
      assert.equal(containerState(DST, name), 'running');
      await waitAllPagesCopied(dst, m, { timeoutMs: 120_000 });
      assert.equal((await readLazyCopy(dst, m)).state, 'complete');
      await finishOnSource(src, dst, m, target(DST), ck.keepDir);
    } finally {
      dst.close();
    }
    const after = counter(DST, name);
    assert.equal(after.token, before.token, 'the same process, not a restart');
    assert.ok(after.count >= before.count, `the counter continued: ${before.count} -> ${after.count}`);
    assert.equal(await memoryMd5(DST, name), before.md5, 'the 64 MB held in memory arrived whole');
    assert.notEqual(containerState(SRC, name), 'running', `not running on ${SRC}`);
    // What Ferry's cleanup step does on the source; the kept dump goes with the container.
    podmanOn(SRC, 'rm', '-f', '-t', '0', name);
    await removeLazyFiles(src, m);
    await removeLazyFiles(inHost(DST), m);
    assert.equal(onHost(SRC, ['test', '-e', ck.keepDir ?? '/nonexistent']).code, 1, 'the kept dump is gone');
    assert.equal(onHost(SRC, ['cat', '/proc/sys/fs/pipe-max-size']).stdout.trim(), pipeBefore, 'fs.pipe-max-size is back');
    assert.equal(containerState(SRC, name), null);
    // The moved container does not depend on the wrapper that restored it (its conmon names the
    // wrapper in its command line, but never runs it again): podman works on it as on any other.
    assert.equal(podmanOn(DST, 'exec', name, 'true').code, 0);
    assert.equal(podmanOn(DST, 'stop', '-t', '1', name).code, 0);
    assert.equal(containerState(DST, name), 'exited');
    assert.equal(await leftovers(SRC, m), '');
    assert.equal(await leftovers(DST, m), '');
  });

  /*
   * Each fault must strike while the container already runs on the destination and part of its memory is
   * still on the source. The restore itself needs the page server (the restored tasks fault before CRIU
   * lets them go), so the pages cannot simply be held back beforehand: the tunnel is slowed down
   * instead (slowPageTunnel) until the restore has returned, then stopped, the copy is checked to
   * be unfinished, and the fault strikes.
   */
  // The last one rolls back with podman's own in-place restore, as Ferry's existing rollback does:
  // the checkpoint folder is whole again once the checkpoint returned.
  const faults: { what: string; strike: (m: LazyMigration) => void; plainRollback?: boolean }[] = [
    { what: "the destination's lazy-pages daemon is killed", strike: (m) => sh(DST, 'kill -9 "$(cat "$1")"', pathsOf(m).lazyPid) },
    { what: "the source's page server is killed", strike: (m) => sh(SRC, 'kill -9 "$(cat "$1")"', pathsOf(m).serverPid) },
    // Killed, not asked to exit: the stopped master would not answer its control socket.
    { what: 'the link breaks (the page tunnel is cut)', strike: (m) => sh(SRC, 'pkill -9 -f -- "-M -S $1 " || true', pathsOf(m).tunnelControl), plainRollback: true },
  ];
  // npm test runs the first (about 15 s each); FERRY_TEST_POSTCOPY_FAULTS=all runs every one.
  for (const f of process.env.FERRY_TEST_POSTCOPY_FAULTS === 'all' ? faults : faults.slice(0, 1)) {
    it(`${f.what} mid-copy: ${DST} kills its copy, ${SRC} brings the container back in place with its memory`, async () => {
      const name = `pc-f-${uid()}`;
      const m = migration();
      started.push({ name, m });
      const src = inHost(SRC);
      const before = await startWorkload(name);
      const { ck, archive } = await freezeAndShip(src, name, m);
      const dst = sshTo(DST);
      try {
        const slow = slowPageTunnel(SRC, m.migrationId);
        try {
          await lazyRestore({ runner: dst }, m, { archive, extra: ['--ignore-static-ip', '--ignore-static-mac'], timeoutMs: 120_000 });
        } finally {
          slow.stop();
        }
        assert.equal((await readLazyCopy(dst, m)).state, 'copying', `pages still missing on ${DST}`);
        assert.equal(containerState(DST, name), 'running', `the container runs on ${DST}, waiting for pages`);
        f.strike(m);
        slow.release();
        await assert.rejects(waitAllPagesCopied(dst, m, { timeoutMs: 60_000 }), /page copy failed.*killed its copy/);
        const abort = await abortLazyRestore({ runner: dst }, m, name);
        assert.equal(abort.before.state, 'failed');
        assert.ok(abort.removed, `${DST} no longer holds the container`);
        if (f.plainRollback) {
          await stopPageServer(src, m);
          assert.equal(sh(SRC, 'podman container restore "$1" >/dev/null && echo ok', name), 'ok');
          sh(SRC, 'rm -rf "$1"', ck.keepDir ?? '/nonexistent');
        } else await rollbackInPlace({ runner: src }, m, { container: name, imagesDir: ck.imagesDir, keepDir: ck.keepDir }, abort);
      } finally {
        dst.close();
      }
      assert.equal(containerState(SRC, name), 'running', `runs on ${SRC} again`);
      assert.equal(containerState(DST, name), null, `not on ${DST}`);
      const after = counter(SRC, name);
      assert.equal(after.token, before.token, 'the same process, not a restart');
      assert.ok(after.count >= before.count, `the counter continued: ${before.count} -> ${after.count}`);
      assert.equal(await memoryMd5(SRC, name), before.md5, 'its memory is whole');
      await closePageTunnel(src, m, target(DST));
      await restorePipeMaxSize(src, m);
      await removeLazyFiles(src, m);
      await removeLazyFiles(inHost(DST), m);
      assert.equal(onHost(SRC, ['test', '-e', ck.keepDir ?? '/nonexistent']).code, 1, 'the kept dump is gone');
      assert.equal(await leftovers(SRC, m), '');
      assert.equal(await leftovers(DST, m), '');
    });
  }
});
