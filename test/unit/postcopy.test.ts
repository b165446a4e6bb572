import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePagemap, parsePagemap, PE_LAZY, PE_PRESENT, planSplit, splitForLazyRestore, unsplit } from '../../src/postcopy/criuImages';
import { CONTAINERS_CONF_SCRIPT, installArgv, lazyPaths, podmanWithWrapper, wrapperScript } from '../../src/postcopy/wrapper';
import { pageServerFailure, raisePipeMaxSize, readLazyCopy, restorePipeMaxSize, stopLazyDaemon, waitAllPagesCopied } from '../../src/postcopy/postcopy';
import { LocalRunner } from '../../src/exec/localRunner';

function varint(v: number | bigint): number[] {
  let x = BigInt(v);
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return out;
}

/** A pagemap_entry as CRIU 4.2 writes it: vaddr, compat_nr_pages 0, flags, nr_pages. */
function entry(vaddr: number, nrPages: number, flags: number): Buffer {
  return Buffer.from([0x08, ...varint(vaddr), 0x10, 0, 0x20, ...varint(flags), 0x28, ...varint(nrPages)]);
}

function image(pagesId: number, entries: Buffer[]): Buffer {
  return encodePagemap({ head: Buffer.from([0x08, ...varint(pagesId)]), pagesId, entries: entries.map((raw) => ({ raw, vaddr: 0n, nrPages: 0, flags: 0 })) });
}

/** Page n of the fake pages image: 4096 bytes of the byte n. */
const page = (n: number) => Buffer.alloc(4096, n);

describe('postcopy: CRIU pagemap images', () => {
  // Three runs: 2 lazy pages, 1 page that must be restored up front (e.g. the stack), 3 lazy pages.
  const entries = [entry(0x400000, 2, PE_LAZY | PE_PRESENT), entry(0x7ffd0000, 1, PE_PRESENT), entry(0x500000, 3, PE_LAZY | PE_PRESENT)];

  it('reads and writes back an image byte for byte', () => {
    const img = image(7, entries);
    const pm = parsePagemap(img);
    assert.equal(pm.pagesId, 7);
    assert.deepEqual(
      pm.entries.map((e) => [e.vaddr, e.nrPages, e.flags]),
      [
        [0x400000n, 2, 6],
        [0x7ffd0000n, 1, 4],
        [0x500000n, 3, 6],
      ],
    );
    assert.deepEqual(encodePagemap(pm), img);
    assert.throws(() => parsePagemap(Buffer.from('not an image')), /bad magic/);
  });

  it('plans a split as CRIU lazy dump writes it: lazy entries lose PRESENT, their pages leave the image', () => {
    const plan = planSplit(parsePagemap(image(1, entries)));
    assert.deepEqual(
      plan.pagemap.entries.map((e) => e.flags),
      [PE_LAZY, PE_PRESENT, PE_LAZY],
    );
    assert.deepEqual(plan.keep, [{ offset: 2 * 4096, length: 4096 }]);
    assert.equal(plan.lazyPages, 5);
    assert.equal(plan.keptPages, 1);
    // The rewritten entries still decode, other fields intact.
    assert.deepEqual(
      parsePagemap(encodePagemap(plan.pagemap)).entries.map((e) => [e.vaddr, e.nrPages, e.flags]),
      [
        [0x400000n, 2, PE_LAZY],
        [0x7ffd0000n, 1, PE_PRESENT],
        [0x500000n, 3, PE_LAZY],
      ],
    );
  });

  it('splits a dump folder in place, keeps the whole dump beside it, and puts it back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-pc-'));
    try {
      const img = join(dir, 'checkpoint');
      const keep = join(dir, 'checkpoint.ferry-lazy');
      mkdirSync(img);
      const whole = Buffer.concat([page(1), page(2), page(3), page(4), page(5), page(6)]);
      writeFileSync(join(img, 'pagemap-1.img'), image(1, entries));
      writeFileSync(join(img, 'pages-1.img'), whole);
      writeFileSync(join(img, 'core-1.img'), 'core');
      const out = splitForLazyRestore(img, keep);
      assert.equal(out.lazyPages, 5);
      assert.equal(out.keptPages, 1);
      assert.deepEqual(readFileSync(join(img, 'pages-1.img')), page(3), 'only the page restored up front is shipped');
      assert.deepEqual(
        parsePagemap(readFileSync(join(img, 'pagemap-1.img'))).entries.map((e) => e.flags),
        [PE_LAZY, PE_PRESENT, PE_LAZY],
      );
      assert.deepEqual(readFileSync(join(keep, 'pages-1.img')), whole, 'the kept dump is complete');
      assert.deepEqual(readFileSync(join(keep, 'pagemap-1.img')), image(1, entries));
      assert.equal(statSync(join(keep, 'core-1.img')).ino, statSync(join(img, 'core-1.img')).ino, 'kept by hard link, not copied');
      assert.throws(() => splitForLazyRestore(img, keep), /exists already/);
      assert.equal(unsplit(img, keep), 2);
      assert.equal(unsplit(img, keep), 0, 'a second time finds nothing to do');
      assert.deepEqual(readdirSync(img).sort(), ['core-1.img', 'pagemap-1.img', 'pages-1.img']);
      assert.deepEqual(readFileSync(join(img, 'pages-1.img')), whole);
      assert.deepEqual(readFileSync(join(img, 'pagemap-1.img')), image(1, entries));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves the dump untouched when a pagemap cannot be read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-pc-'));
    try {
      const img = join(dir, 'checkpoint');
      mkdirSync(img);
      writeFileSync(join(img, 'pagemap-1.img'), 'garbage');
      writeFileSync(join(img, 'pages-1.img'), page(1));
      assert.throws(() => splitForLazyRestore(img, join(dir, 'keep')), /bad magic/);
      assert.equal(existsSync(join(dir, 'keep')), false);
      assert.deepEqual(readFileSync(join(img, 'pages-1.img')), page(1));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('postcopy: the runtime wrapper', function () {
  // It starts several processes (sh, node for the split): seconds on a loaded machine, not 2.
  this.timeout(20_000);
  it('derives every path from the migration id and refuses ids that are not plain names', () => {
    const p = lazyPaths('m-abc.1', '/x');
    assert.equal(p.runtime, '/x/m-abc.1/runc');
    assert.equal(p.containersConf, '/x/m-abc.1/containers.conf');
    assert.throws(() => lazyPaths('../etc', '/x'), /not a usable migration id/);
    assert.throws(() => lazyPaths('a b', '/x'), /not a usable migration id/);
  });

  // Cold read of a67bf0b: with a host's podman prefix such as `sudo podman`, the variable came
  // before sudo, which drops it: podman then ran without the wrapper.
  it('points podman at the wrapper after any prefix such as sudo', () => {
    const conf = lazyPaths('m-1', '/x').containersConf;
    assert.deepEqual(podmanWithWrapper('m-1', ['podman'], '/x'), ['env', `CONTAINERS_CONF=${conf}`, 'podman']);
    assert.deepEqual(podmanWithWrapper('m-1', ['sudo', '-n', '/usr/bin/podman', '--log-level=warn'], '/x'), ['sudo', '-n', 'env', `CONTAINERS_CONF=${conf}`, '/usr/bin/podman', '--log-level=warn']);
  });

  it('finds runc on the standard path when the configured one is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-pcr-'));
    try {
      const settings = { migrationId: 'm-rt', runc: join(dir, 'no-such-runc'), node: process.execPath, splitScript: '/nonexistent', lazyPort: 4000, serverPort: 0, deadlineSeconds: 60, root: join(dir, 'pc') };
      const [cmd, ...args] = installArgv(settings);
      assert.equal(spawnSync(cmd, [...args], { encoding: 'utf8' }).status, 0);
      const r = spawnSync(lazyPaths('m-rt', join(dir, 'pc')).runtime, ['--version'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /runc version/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is valid sh', () => {
    const s = wrapperScript({ migrationId: 'm-1', runc: '/usr/bin/runc', node: '/usr/bin/node', splitScript: "/opt/it's/splitMain.js", lazyPort: 4000, serverPort: 4001, deadlineSeconds: 60 });
    const r = spawnSync('sh', ['-n'], { input: s, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.throws(() => wrapperScript({ migrationId: 'm-1', runc: 'r', node: 'n', splitScript: 's', lazyPort: 0, serverPort: 4001, deadlineSeconds: 60 }), /port/);
  });

  it('passes runc commands through, and after a checkpoint splits the dump and records where it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-pcw-'));
    try {
      // A stand-in for runc: logs its arguments; its checkpoint writes a one-task dump.
      const runc = join(dir, 'runc');
      writeFileSync(runc, `#!/bin/sh\necho "$*" >> ${dir}/runc.log\nfor a in "$@"; do [ "$prev" = --image-path ] && img=$a; prev=$a; done\n[ -n "$img" ] && mkdir -p "$img" && cp ${dir}/fixture/* "$img"/\nexit 0\n`);
      chmodSync(runc, 0o755);
      mkdirSync(join(dir, 'fixture'));
      writeFileSync(join(dir, 'fixture', 'pagemap-1.img'), image(1, [entry(0x400000, 2, PE_LAZY | PE_PRESENT), entry(0x7ffd0000, 1, PE_PRESENT)]));
      writeFileSync(join(dir, 'fixture', 'pages-1.img'), Buffer.concat([page(1), page(2), page(3)]));
      const settings = { migrationId: 'm-unit', runc, node: process.execPath, splitScript: require.resolve('../../src/postcopy/splitMain'), lazyPort: 4000, serverPort: 0, deadlineSeconds: 60, root: join(dir, 'pc') };
      const [cmd, ...args] = installArgv(settings);
      const inst = spawnSync(cmd, [...args], { encoding: 'utf8' });
      assert.equal(inst.status, 0, inst.stderr);
      const p = lazyPaths('m-unit', join(dir, 'pc'));
      assert.equal(statSync(p.runtime).mode & 0o777, 0o700);
      const help = spawnSync(p.runtime, ['checkpoint', '--help'], { encoding: 'utf8' });
      assert.equal(help.status, 0);
      const img = join(dir, 'userdata', 'checkpoint');
      const ck = spawnSync(p.runtime, ['--log-format=json', '--log', '/l', '--criu', '/c', 'checkpoint', '--image-path', img, '--work-path', join(dir, 'userdata'), 'cid'], { encoding: 'utf8' });
      assert.equal(ck.status, 0, ck.stderr);
      assert.equal(readFileSync(p.checkpointState, 'utf8'), `lazy\n${img}\n${img}.ferry-lazy\n`);
      assert.equal(statSync(join(img, 'pages-1.img')).size, 4096);
      assert.equal(statSync(join(`${img}.ferry-lazy`, 'pages-1.img')).size, 3 * 4096);
      const log = readFileSync(join(dir, 'runc.log'), 'utf8').trim().split('\n');
      assert.deepEqual(log, ['checkpoint --help', `--log-format=json --log /l --criu /c checkpoint --image-path ${img} --work-path ${join(dir, 'userdata')} cid`]);
      assert.equal(spawnSync(p.runtime, ['delete', '--force', 'cid']).status, 0);
      assert.equal(readFileSync(join(dir, 'runc.log'), 'utf8').trim().split('\n').pop(), 'delete --force cid');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Cold read of a67bf0b: a lazy-pages supervisor from an earlier restore attempt outlived it.
  // When its daemon ended it killed whatever the shared pid file named (by then the newer
  // restore's container) and wrote its own end as the newer copy's verdict.
  it('a lazy-pages supervisor whose restore was superseded kills nothing and writes no verdict', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-pcs-'));
    const victim = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const settings = { migrationId: 'm-sup', runc: '/bin/true', node: process.execPath, splitScript: '/nonexistent', lazyPort: 4000, serverPort: 0, deadlineSeconds: 60, root: join(dir, 'pc') };
      const [cmd, ...args] = installArgv(settings);
      assert.equal(spawnSync(cmd, [...args], { encoding: 'utf8' }).status, 0);
      const p = lazyPaths('m-sup', join(dir, 'pc'));
      const pidfile = join(dir, 'container.pid');
      writeFileSync(pidfile, String(victim.pid));
      // The newer restore wrote its nonce; this supervisor carries the older one. Its daemon
      // fails at once (no images): the case in which a supervisor kills the container.
      writeFileSync(p.lazyGen, 'newer\n');
      const sup = spawnSync(p.runtime, ['__ferry_lazy_daemon', join(dir, 'no-images'), dir, pidfile, 'older'], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(sup.status, 0, sup.stderr);
      // Not yet reaped (the event loop was blocked): a killed one would be a zombie.
      const state = readFileSync(`/proc/${victim.pid}/stat`, 'utf8').split(') ')[1]?.[0];
      assert.notEqual(state, 'Z', 'the process the pid file names still runs');
      for (const f of [p.lazyRc, p.lazyKilled, p.lazyPid]) assert.equal(existsSync(f), false, `${f} not written`);
    } finally {
      victim.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Cold read of fc9af68: a destination restarted mid-copy keeps lazy.pid but never writes
  // lazy.rc. Waiting for rc then failed every rollback for good, leaving the container frozen
  // on the source, where the design says the source restores it in place.
  // fs.pipe-max-size is one value per host. Each migration used to keep "the value before" in
  // its own folder and write it back when it ended: two post-copy migrations from one host, the
  // first to end lowered the limit under the second, whose next page-server pipe then failed.
  it('fs.pipe-max-size: raised once per host, put back when the last migration that needs it ends', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ferry-pipe-'));
    const sysctl = join(root, 'pipe-max-size');
    const run = new LocalRunner();
    const m1 = { migrationId: 'm-one', root };
    const m2 = { migrationId: 'm-two', root };
    const limit = () => Number(readFileSync(sysctl, 'utf8').trim());
    try {
      writeFileSync(sysctl, '1048576\n');
      assert.equal(await raisePipeMaxSize(run, m1, sysctl), 1048576);
      assert.equal(await raisePipeMaxSize(run, m2, sysctl), null, 'already raised');
      assert.equal(limit(), 4194304);
      await restorePipeMaxSize(run, m1, sysctl);
      assert.equal(limit(), 4194304, 'still raised while the second migration needs it');
      await restorePipeMaxSize(run, m2, sysctl);
      assert.equal(limit(), 1048576, 'back as it was once neither needs it');
      await restorePipeMaxSize(run, m2, sysctl);
      assert.equal(limit(), 1048576, 'twice is once');
      assert.deepEqual(
        readdirSync(root).filter((f) => f.startsWith('pipe-max-size.before')),
        [],
      );
      // A migration whose folder was removed without a word holds nothing.
      await raisePipeMaxSize(run, m1, sysctl);
      rmSync(lazyPaths(m1.migrationId, root).dir, { recursive: true });
      await restorePipeMaxSize(run, m2, sysctl);
      assert.equal(limit(), 1048576);
      await restorePipeMaxSize(new LocalRunner(), { migrationId: 'm-none', root: join(root, 'absent') }, sysctl);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  // A copy that failed in CI said only "criu lazy-pages exited 1": CRIU's reason was in a log
  // that podman removed with the container, and the page server's in a folder cleanup removed.
  it("a failed page copy names CRIU's reason on both hosts", async () => {
    const root = mkdtempSync(join(tmpdir(), 'ferry-pce-'));
    const m = { migrationId: 'm-err', root };
    const p = lazyPaths(m.migrationId, root);
    const run = new LocalRunner();
    try {
      mkdirSync(p.dir, { recursive: true });
      assert.equal(await pageServerFailure(run, m), '', 'nothing to say while it runs');
      writeFileSync(p.lazyRc, '1 1796323739367\n');
      writeFileSync(p.lazyKilled, 'killed 1796323739360\n');
      writeFileSync(p.lazyErr, 'Error (criu/page-xfer.c:1660): page-xfer: Remote side closed connection\n');
      const copy = await readLazyCopy(run, m);
      assert.deepEqual(copy, { state: 'failed', rc: 1, atMs: 1796323739367, containerKilled: true, cause: 'Error (criu/page-xfer.c:1660): page-xfer: Remote side closed connection' });
      await assert.rejects(waitAllPagesCopied(run, m, { timeoutMs: 5_000 }), /the page copy failed \(criu lazy-pages exited 1: Error \(criu\/page-xfer.c:1660\): page-xfer: Remote side closed connection\); the destination killed its copy/);
      writeFileSync(p.serverRc, '0 1796323739000\n');
      assert.equal(await pageServerFailure(run, m), '', 'a server that ended well');
      writeFileSync(p.serverRc, '1 1796323739000\n');
      writeFileSync(p.serverErr, 'Error (criu/page-pipe.c:424): page-pipe: splice: -1: Bad file descriptor\n');
      assert.equal(await pageServerFailure(run, m), 'exited 1: Error (criu/page-pipe.c:424): page-pipe: splice: -1: Bad file descriptor');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('stopping the lazy-pages daemon: a supervisor that is gone is not waited for; one that lives is', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ferry-pcd-'));
    const m = { migrationId: 'm-stop', root };
    const p = lazyPaths(m.migrationId, root);
    let fake: ReturnType<typeof spawn> | undefined;
    try {
      mkdirSync(p.dir, { recursive: true });
      const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
      writeFileSync(p.lazyPid, `${dead}\n`);
      await stopLazyDaemon(new LocalRunner(), m);
      // A supervisor still alive (its command line is what pgrep looks for): refused, not guessed.
      writeFileSync(p.lazySup, `${dead}\n`);
      await stopLazyDaemon(new LocalRunner(), m);
      writeFileSync(p.runtime, 'sleep 30\n');
      fake = spawn('sh', [p.runtime, '__ferry_lazy_daemon', 'x'], { stdio: 'ignore' });
      writeFileSync(p.lazySup, `${fake.pid}\n`);
      await new Promise((r) => setTimeout(r, 200));
      await assert.rejects(stopLazyDaemon(new LocalRunner(), m), /supervisor of this migration did not end/);
    } finally {
      fake?.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("writes a containers.conf that is the host's own with runc pointed at the wrapper", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-pcc-'));
    try {
      const conf = (base: string): string => {
        writeFileSync(join(dir, 'base.conf'), base);
        const r = spawnSync('sh', ['-c', CONTAINERS_CONF_SCRIPT, 'x', join(dir, 'out.conf'), '/w/runc', join(dir, 'base.conf')], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return readFileSync(join(dir, 'out.conf'), 'utf8');
      };
      assert.equal(conf('[engine]\nruntime = "runc"\n'), '[engine]\nruntime = "runc"\n\n[engine.runtimes]\nrunc = ["/w/runc"]\n');
      assert.equal(conf('[engine]\n[engine.runtimes]\nrunc = [\n  "/usr/bin/runc",\n]\ncrun = ["/usr/bin/crun"]\n[network]\n'), '[engine]\n[engine.runtimes]\nrunc = ["/w/runc"]\ncrun = ["/usr/bin/crun"]\n[network]\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
