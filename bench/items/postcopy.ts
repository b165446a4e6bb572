import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { bed, hostInfo, uid } from '../../test/support/bed';
import { now, sleep } from '../lib/clock';
import { freshPort } from '../lib/containers';
import { firstAnswer } from '../lib/http';
import { inHost, must, run } from '../lib/shell';
import { ratios, summarize } from '../lib/stats';
import type { ItemResult } from './types';

/*
 * Item 3, measured outside Ferry: what post-copy (CRIU lazy pages over the network) would give
 * for a process holding and dirtying `mib` MiB, migrated b → d with CRIU alone, next to a
 * plain CRIU dump → copy → restore of the same workload. Podman 4.3 exposes neither
 * `--lazy-pages` nor a page server, so Ferry cannot do this; the figure is what it would gain.
 *
 * Facts found on this machine (Linux 6.18, CRIU 4.2.1), which shape the code below:
 * - The bed's hosts share one pid namespace. A lazy dump keeps the source tasks frozen
 *   (alive) until every page has been pulled, so restoring the same pids on d fails
 *   ("Can't fork for N: File exists"). The workload therefore runs in its own pid namespace
 *   (`unshare --pid --fork`), as a container would; CRIU dumps that namespace and restore
 *   creates a new one.
 * - A pid namespace init that is not a session leader fails the dump ("A session leader of
 *   N(1) is outside of its pid namespace"): `setsid` inside the namespace.
 * - Descriptors opened in another mount namespace fail the dump ("Can't lookup mount=24 for
 *   fd=..."): stdio is opened by a shell inside host b, never inherited from the caller.
 * - CRIU's page server sizes a pipe with F_SETPIPE_SZ to 3,354,624 bytes; this machine drops
 *   CAP_SYS_RESOURCE, so above fs.pipe-max-size (1 MiB) that fails with EPERM, the /dev/null
 *   sink is never opened, and the first page request dies with "page-pipe: splice: -1: Bad
 *   file descriptor". The item raises fs.pipe-max-size (global, not per namespace) to 4 MiB
 *   for its duration, for both strategies, and puts the old value back.
 * - No `--shell-job` (own session, no tty) and no `--tcp-*` flag (only a listening socket;
 *   nothing is connected to b when the dump starts).
 */

const PIPE_MAX_NEEDED = 4 * 1024 * 1024;
const PIPE_MAX = '/proc/sys/fs/pipe-max-size';
const CAP_SYS_RESOURCE = 24;

type Strategy = 'plain' | 'postcopy';

interface RunResult {
  strategy: Strategy;
  /** Freeze start (criu dump launched) until the first HTTP answer on d. */
  downtimeMs: number;
  /** plain: criu dump exit; post-copy: dump's status fd (images written, page server listening). */
  dumpMs: number;
  copyMs: number;
  /** plain: criu restore; post-copy: lazy-pages daemon start + criu restore --lazy-pages. */
  restoreMs: number;
  /** post-copy: freeze start until the lazy-pages daemon on d exits (every page arrived). */
  allPagesMs?: number;
  /** post-copy: freeze start until criu dump on b exits (source released). */
  sourceReleasedMs?: number;
  imageBytes: number;
  /** memhog's VmRSS on d at the end (post-copy: after the daemon exited). */
  restoredRssKiB: number;
  counterBefore: string;
  counterAfter: string[];
  continued: boolean;
}

interface Daemon {
  child: ChildProcess;
  ready: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  output(): string;
}

/** A long-running command with CRIU's --status-fd on fd 3: `ready` resolves at the byte CRIU writes there. */
function daemon(argv: string[]): Daemon {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, at: now() })));
  const status = child.stdio[3] as Readable;
  const ready = new Promise<number>((resolve, reject) => {
    let seen = false;
    status.on('data', () => {
      if (!seen) resolve(now());
      seen = true;
    });
    status.on('error', () => undefined);
    status.on('end', () => {
      if (!seen) reject(new Error(`${argv.join(' ')}: exited before it was ready: ${out.trim()}`));
    });
  });
  ready.catch(() => undefined);
  return { child, ready, exited, output: () => out };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function getText(address: string, port: number, path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ host: address, port, path, timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

async function readCount(address: string, port: number): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const t = await getText(address, port, '/count');
    if (t && /^\d+ \d+$/.test(t)) return t;
    await sleep(50);
  }
  throw new Error(`no counter at http://${address}:${port}/count`);
}

function hasCapSysResource(): boolean {
  const eff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return ((BigInt(`0x${eff}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n) === 1n;
}

function cmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return null;
  }
}

/** Pids whose command line carries this run's marker (every process of the workload does). */
function marked(marker: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const c = cmdline(Number(e));
    if (c?.includes(marker)) out.push(Number(e));
  }
  return out;
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function rssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

function killGroup(c: ChildProcess | undefined): void {
  if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function killMarked(marker: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const pids = marked(marker);
    if (pids.length === 0) return;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await sleep(100);
  }
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** One migration b → d of a fresh workload, with one strategy. `cmds` collects the exact argv used. */
async function once(strategy: Strategy, memhog: string, mib: number, cmds: Record<string, string>): Promise<RunResult> {
  const id = uid();
  const marker = `ferry-pc-${id}`;
  const www = `/tmp/${marker}/www`; // the machine's /tmp: the same path on every bed host, like a container's rootfs
  const src = hostInfo('b');
  const dst = hostInfo('d');
  const dirB = `/var/lib/ferry/${marker}`; // per-host bind mount: images really have to be copied
  const dirD = dirB;
  const port = freshPort();
  const psPort = freshPort();
  const b = bed();
  const ssh = ['-o', 'BatchMode=yes', '-i', b.ssh.key, '-o', `UserKnownHostsFile=${b.ssh.knownHosts}`];
  let tree: ChildProcess | undefined;
  let dump: Daemon | undefined;
  let lazy: Daemon | undefined;
  try {
    mkdirSync(www, { recursive: true });
    writeFileSync(`${www}/index.html`, 'post-copy bench\n');
    await must(inHost('b', ['mkdir', '-p', `${dirB}/img`, `${dirB}/work`]));
    await must(inHost('d', ['mkdir', '-p', `${dirD}/work`]));

    // The workload: memhog (holding and dirtying `mib` MiB), busybox httpd serving `www`, and a shell
    // counter (random token + count in the shell's memory, written to www/count) as the proof of continuity.
    const script = `cd /tmp/${marker}; ${memhog} ${mib} 10 ${marker} & busybox httpd -f -p ${port} -h ${www} & tok=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$tok $i" > www/count.new; mv www/count.new www/count; sleep 0.1; done`;
    const start = inHost('b', ['sh', '-c', 'exec unshare --pid --fork setsid busybox sh -c "$1" </dev/null >/dev/null 2>&1', marker, script]);
    cmds.start = start.map(shq).join(' ');
    tree = spawn(start[0], start.slice(1), { stdio: 'ignore', detached: true });
    tree.on('error', () => undefined);
    const unsharePid = tree.pid ?? NaN;
    let root = NaN;
    let hog = NaN;
    const t = now();
    let serving = false;
    while (now() - t < 60_000) {
      root = children(unsharePid)[0] ?? NaN;
      hog = children(root).find((p) => (cmdline(p) ?? '').startsWith(memhog)) ?? NaN;
      serving = (await getText(src.address, port, '/count')) !== null;
      if (rssKiB(hog) >= mib * 1024 * 0.95 && serving) break;
      await sleep(100);
    }
    if (!(rssKiB(hog) >= mib * 1024 * 0.95) || !serving)
      throw new Error(`workload not ready in 60 s: memhog ${hog} rss ${rssKiB(hog)} KiB of ${mib} MiB, http://${src.address}:${port}/count ${serving ? 'answers' : 'does not answer (port taken?)'}`);
    await sleep(500); // a few dirtying rounds
    const counterBefore = await readCount(src.address, port);
    await sleep(300); // httpd's child for that request has exited: nothing connected when the dump starts

    const dumpArgv = ['criu', 'dump', '-t', String(root), '-D', `${dirB}/img`, '-W', `${dirB}/work`, '-o', 'dump.log'];
    const copyArgv = ['scp', '-q', '-r', ...ssh, `${dirB}/img`, `root@${dst.address}:${dirD}/img`];
    const restoreArgv = ['criu', 'restore', '-d', '-D', `${dirD}/img`, '-W', `${dirD}/work`, '-o', 'restore.log', '--pidfile', `${dirD}/work/root.pid`];
    const poll = firstAnswer(dst.address, port, { everyMs: 5, timeoutMs: 300_000 });
    let t1: number;
    let t2: number;
    let t3: number;
    const t0 = now();
    let allPagesAt: number | undefined;
    let releasedAt: number | undefined;
    if (strategy === 'plain') {
      cmds.plainDump = inHost('b', dumpArgv).map(shq).join(' ');
      cmds.plainCopy = inHost('b', copyArgv).map(shq).join(' ');
      cmds.plainRestore = inHost('d', restoreArgv).map(shq).join(' ');
      const d = await run(inHost('b', dumpArgv));
      t1 = now();
      if (d.code !== 0) throw new Error(`criu dump exited ${d.code}: ${(await logErrors('b', `${dirB}/work/dump.log`)) || d.stderr}`);
      await must(inHost('b', copyArgv));
      t2 = now();
      const r = await run(inHost('d', restoreArgv));
      t3 = now();
      if (r.code !== 0) throw new Error(`criu restore exited ${r.code}: ${(await logErrors('d', `${dirD}/work/restore.log`)) || r.stderr}`);
    } else {
      const lazyDump = [...dumpArgv, '--lazy-pages', '--address', src.address, '--port', String(psPort), '--status-fd', '3'];
      const lazyDaemon = ['criu', 'lazy-pages', '--page-server', '--address', src.address, '--port', String(psPort), '-D', `${dirD}/img`, '-W', `${dirD}/work`, '-o', 'lazy-pages.log', '--status-fd', '3'];
      const lazyRestore = [...restoreArgv.slice(0, 3), '--lazy-pages', ...restoreArgv.slice(3)];
      cmds.postcopyDump = `${inHost('b', lazyDump).map(shq).join(' ')}  (runs until every page is served; ready = a byte on fd 3)`;
      cmds.postcopyCopy = inHost('b', copyArgv).map(shq).join(' ');
      cmds.postcopyLazyPages = `${inHost('d', lazyDaemon).map(shq).join(' ')}  (exits when every page has arrived; ready = a byte on fd 3)`;
      cmds.postcopyRestore = inHost('d', lazyRestore).map(shq).join(' ');
      dump = daemon(inHost('b', lazyDump));
      try {
        t1 = await within(dump.ready, 300_000, 'criu dump --lazy-pages');
      } catch (e) {
        throw new Error(`${(e as Error).message} ${await logErrors('b', `${dirB}/work/dump.log`)}`);
      }
      await must(inHost('b', copyArgv));
      t2 = now();
      lazy = daemon(inHost('d', lazyDaemon));
      try {
        await within(lazy.ready, 60_000, 'criu lazy-pages');
      } catch (e) {
        throw new Error(`${(e as Error).message} ${await logErrors('d', `${dirD}/work/lazy-pages.log`)}`);
      }
      const r = await run(inHost('d', lazyRestore));
      t3 = now();
      if (r.code !== 0) throw new Error(`criu restore --lazy-pages exited ${r.code}: ${(await logErrors('d', `${dirD}/work/restore.log`)) || r.stderr}`);
    }
    const answered = await poll.promise;
    if (answered === null) throw new Error(`${strategy}: no HTTP answer on ${dst.address}:${port} after restore`);
    const counterAfter = [await readCount(dst.address, port)];
    await sleep(400);
    counterAfter.push(await readCount(dst.address, port));
    if (lazy && dump) {
      const [l, dd] = await within(Promise.all([lazy.exited, dump.exited]), 600_000, 'lazy page transfer');
      if (l.code !== 0) throw new Error(`criu lazy-pages exited ${l.code ?? l.signal}: ${await logErrors('d', `${dirD}/work/lazy-pages.log`)}`);
      if (dd.code !== 0) throw new Error(`criu dump --lazy-pages exited ${dd.code ?? dd.signal}: ${await logErrors('b', `${dirB}/work/dump.log`)}`);
      allPagesAt = l.at;
      releasedAt = dd.at;
    }
    const newRoot = Number((await must(inHost('d', ['cat', `${dirD}/work/root.pid`]))).trim());
    const newHog = children(newRoot).find((p) => (cmdline(p) ?? '').startsWith(memhog)) ?? NaN;
    const size = await must(inHost('b', ['du', '-sb', `${dirB}/img`]));
    const [tokB, nB] = counterBefore.split(' ');
    const [tok1, n1] = counterAfter[0].split(' ');
    const [tok2, n2] = counterAfter[1].split(' ');
    return {
      strategy,
      downtimeMs: answered - t0,
      dumpMs: t1 - t0,
      copyMs: t2 - t1,
      restoreMs: t3 - t2,
      allPagesMs: allPagesAt === undefined ? undefined : allPagesAt - t0,
      sourceReleasedMs: releasedAt === undefined ? undefined : releasedAt - t0,
      imageBytes: Number(size.split(/\s/)[0]),
      restoredRssKiB: rssKiB(newHog),
      counterBefore,
      counterAfter,
      continued: tokB === tok1 && tok1 === tok2 && Number(n1) >= Number(nB) && Number(n2) > Number(n1),
    };
  } finally {
    killGroup(lazy?.child);
    killGroup(dump?.child);
    await killMarked(marker); // source tree (if still there) and restored tree: each is a pid namespace, killing its init ends it
    killGroup(tree);
    await run(inHost('b', ['rm', '-rf', dirB]));
    await run(inHost('d', ['rm', '-rf', dirD]));
    rmSync(`/tmp/${marker}`, { recursive: true, force: true });
  }
}

async function logErrors(host: string, file: string): Promise<string> {
  const r = await run(inHost(host, ['grep', '-E', 'Error|FAILED', file]));
  return r.stdout
    .split('\n')
    .filter((l) => l && !l.includes('RLIMIT_NOFILE'))
    .slice(-4)
    .join(' | ');
}

/**
 * Item 3, measured with CRIU directly (no podman): a process tree holding and dirtying `mib`
 * MiB migrated from host b to host d, `reps` times each way: plain (dump to disk, scp the
 * images, restore) and post-copy (lazy dump: memory stays on b behind CRIU's page server;
 * the small images are copied; on d a lazy-pages daemon pulls pages on fault and in the
 * background while the restored tree already runs). Ratio = post-copy downtime ÷ plain
 * downtime, per repetition (the two run back to back, order alternating).
 */
export async function postCopy(reps: number, memhogPath: string, mib: number): Promise<ItemResult[]> {
  const memhog = resolve(memhogPath); // the workload cds into its own folder
  const checks: Record<string, string> = {};
  for (const h of ['b', 'd']) {
    const r = await run(inHost(h, ['criu', 'check', '--feature', 'uffd-noncoop']));
    checks[h] = `exit ${r.code}: ${(r.stdout + r.stderr).trim().split('\n').slice(-1)[0]}`;
    if (r.code !== 0) throw new Error(`host ${h}: criu check --feature uffd-noncoop ${checks[h]}`);
  }
  const pipeBefore = Number(readFileSync(PIPE_MAX, 'utf8').trim());
  const raise = pipeBefore < PIPE_MAX_NEEDED && !hasCapSysResource();
  const cmds: Record<string, string> = {};
  const plain: RunResult[] = [];
  const post: RunResult[] = [];
  const t = now();
  try {
    if (raise) writeFileSync(PIPE_MAX, String(PIPE_MAX_NEEDED));
    for (let i = 0; i < reps; i++) {
      const order: Strategy[] = i % 2 === 0 ? ['plain', 'postcopy'] : ['postcopy', 'plain'];
      for (const s of order) (s === 'plain' ? plain : post).push(await once(s, memhog, mib, cmds));
    }
  } finally {
    if (raise) writeFileSync(PIPE_MAX, String(pipeBefore));
  }
  const pick = (rs: RunResult[], k: 'downtimeMs' | 'dumpMs' | 'copyMs' | 'restoreMs' | 'allPagesMs' | 'sourceReleasedMs' | 'imageBytes' | 'restoredRssKiB') => rs.map((r) => r[k] ?? NaN);
  const round = (rs: RunResult[]) => rs.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v) : v])));
  const allContinued = [...plain, ...post].every((r) => r.continued);
  return [
    {
      item: 3,
      title: `post-copy measured with CRIU directly (podman cannot): downtime post-copy ÷ plain, ${mib} MiB`,
      goal: '≤ 0.5',
      ratio: ratios(pick(post, 'downtimeMs'), pick(plain, 'downtimeMs')),
      met: (r) => r <= 0.5,
      details: {
        plainDowntimeMs: summarize(pick(plain, 'downtimeMs')),
        postcopyDowntimeMs: summarize(pick(post, 'downtimeMs')),
        postcopyAllPagesMs: summarize(pick(post, 'allPagesMs')),
        postcopySourceReleasedMs: summarize(pick(post, 'sourceReleasedMs')),
        plainImageBytes: summarize(pick(plain, 'imageBytes')),
        postcopyImageBytes: summarize(pick(post, 'imageBytes')),
        stateContinued: allContinued,
        runs: { plain: round(plain), postcopy: round(post) },
        commands: cmds,
        copy: 'scp -r of the image folder from host b to host d over the bed bridge (SSH), run inside b; /var/lib/ferry is a per-host bind mount, so nothing is shared. Counted in the downtime of both strategies.',
        downtime: 'from launching criu dump on b (freeze) to the first HTTP 200 from the restored httpd on d (polled every 5 ms from the root namespace); every command is run from the bench process through nsenter, for both strategies',
        uffdNoncoop: checks,
        pipeMaxSize: raise ? `raised ${pipeBefore} → ${PIPE_MAX_NEEDED} for the item, then put back (CRIU's page server needs a 3,354,624-byte pipe; no CAP_SYS_RESOURCE here)` : `left at ${pipeBefore}`,
        itemMs: Math.round(now() - t),
      },
      notes: [
        'This is CRIU 4.2.1 run directly on a process tree (own pid namespace, no container, no podman), not Ferry: Ferry drives podman 4.3.1, whose `container checkpoint`/`restore` expose neither `--lazy-pages` nor a page server, so Ferry cannot use post-copy. The figure says what post-copy would give on this kernel, nothing more.',
        'Post-copy downtime ends when the process answers on d while most of its memory is still on b; the pages keep arriving afterwards (allPagesMs), and until then the source host must stay up: a failure of b or of the network in that window loses the process (there is no complete copy anywhere).',
        `State: a shell counter with a random token, kept in the migrated shell's memory, served over HTTP; ${allContinued ? 'it continued (same token, count not reset and still increasing on d) in every run' : 'it did NOT continue in every run: see runs'}.`,
      ],
    },
  ];
}
