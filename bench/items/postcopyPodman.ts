import { resolve } from 'node:path';
import { LocalRunner } from '../../src/exec/localRunner';
import type { CommandResult, CommandRunner, RunOptions } from '../../src/exec/runner';
import { parseCheckpointStats } from '../../src/podman/parse';
import {
  closePageTunnel,
  finishOnSource,
  installLazyRuntime,
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
  serveLazyPages,
  SPLIT_SCRIPT,
  SshTarget,
  stopPageServer,
  waitAllPagesCopied,
} from '../../src/postcopy';
import { bed, hostInfo, uid } from '../../test/support/bed';
import { now, sleep } from '../lib/clock';
import { freshPort } from '../lib/containers';
import { firstAnswer } from '../lib/http';
import { inHost, must, run } from '../lib/shell';
import { ratios, summarize } from '../lib/stats';
import type { ItemResult } from './types';

/*
 * Item 3 through podman: the downtime of a container holding and dirtying `mib` MiB (memhog plus
 * a busybox httpd, the workload of item 3), migrated SRC -> DST
 *  - plain:    podman container checkpoint --export (podman's default zstd, as Ferry by default,
 *              and --compress none), scp, podman container restore --import;
 *  - post-copy: src/postcopy: the same podman commands through the lazy-pages runtime wrapper
 *              (runc's ordinary dump to disk, lazy pages split off and kept on the source, an
 *              archive of ~0.2 MB), CRIU's page server on the kept dump behind an SSH tunnel,
 *              and a lazy restore.
 * Every command of both runs in the host that runs it in Ferry (the source's worker, the
 * destination's worker), through nsenter; the archive goes by scp (a fresh SSH connection) in
 * both. What is set up before the freeze (wrapper, tunnel, fs.pipe-max-size) is not counted:
 * Ferry would do it in preflight. Downtime = from just before the checkpoint command to the first
 * HTTP 200 on DST, polled from outside every 5 ms.
 */

type Strategy = 'plain-zstd' | 'plain-none' | 'post-copy';

interface Run {
  strategy: Strategy;
  downtimeMs: number;
  checkpointMs: number;
  /** post-copy: page server start until it listens. */
  serveMs?: number;
  copyMs: number;
  restoreMs: number;
  /** Restore returned -> first answer. */
  answerAfterRestoreMs: number;
  /** post-copy: freeze -> the destination's lazy-pages daemon exited 0 (every page there): the window the source must stay up. */
  allPagesMs?: number;
  archiveBytes: number;
  criuFrozenMs?: number;
  runcCheckpointMs?: number;
  podmanCheckpointMs?: number;
  podmanRestoreMs?: number;
  runcRestoreMs?: number;
  splitMs?: number;
  lazyPages?: number;
  memhogRssKiB?: number;
}

function hostRunner(host: string): CommandRunner {
  const h = hostInfo(host);
  const local = new LocalRunner(`host ${host}`);
  return { where: `host ${host}`, run: (argv: readonly string[], opts?: RunOptions): Promise<CommandResult> => local.run(['nsenter', `--mount=${h.mountns}`, `--net=${h.netns}`, ...argv], opts) };
}

function sshTarget(host: string): SshTarget {
  const b = bed();
  return { user: 'root', address: hostInfo(host).address, port: 22, privateKey: b.ssh.key, knownHosts: b.ssh.knownHosts };
}

function scpArgv(file: string, to: string): string[] {
  const b = bed();
  return ['scp', '-q', '-o', 'BatchMode=yes', '-i', b.ssh.key, '-o', `UserKnownHostsFile=${b.ssh.knownHosts}`, file, `root@${hostInfo(to).address}:${file}`];
}

async function memhogRss(host: string, name: string): Promise<number> {
  const r = await run(inHost(host, ['podman', 'exec', name, 'sh', '-c', 'for p in /proc/[0-9]*; do [ "$(head -c 7 $p/cmdline 2>/dev/null)" = /memhog ] && sed -n "s/^VmRSS:[^0-9]*\\([0-9]*\\).*/\\1/p" $p/status; done']));
  return Number(r.stdout.trim().split('\n')[0]) || NaN;
}

const DIR = '/var/lib/ferry/archives';

/** bench/lib's startMemhog, with the share of memory rewritten per second as a parameter. */
async function startMemhog(host: string, name: string, port: number, memhog: string, mib: number, dirtyPct: number): Promise<void> {
  await must(inHost(host, ['podman', 'run', '-d', '--name', name, '-p', `${port}:80`, '-v', `${memhog}:/memhog:ro`, bed().image, 'sh', '-c', `/memhog ${mib} ${dirtyPct} & exec /bin/httpd -f -p 80 -h /www`]));
}
const ms = (us?: number) => (us === undefined ? undefined : us / 1000);

async function plainOnce(compress: 'zstd' | 'none', src: string, dst: string, memhog: string, mib: number, dirtyPct: number): Promise<Run> {
  const name = `bpp-${uid()}`;
  const port = freshPort();
  const file = `${DIR}/bpp-${name}.tar`;
  try {
    await startMemhog(src, name, port, memhog, mib, dirtyPct);
    await sleep(Math.max(2000, mib * 8)); // memhog fills its memory first
    await must(inHost(src, ['mkdir', '-p', DIR]));
    await must(inHost(dst, ['mkdir', '-p', DIR]));
    const poll = firstAnswer(hostInfo(dst).address, port, { everyMs: 5, timeoutMs: 300_000 });
    const t0 = now();
    const ck = await must(inHost(src, ['podman', 'container', 'checkpoint', name, '--export', file, '--compress', compress, '--print-stats']));
    const t1 = now();
    await must(inHost(src, scpArgv(file, dst)));
    const t2 = now();
    const rs = await must(inHost(dst, ['podman', 'container', 'restore', '--import', file, '--ignore-static-ip', '--ignore-static-mac', '--print-stats']));
    const t3 = now();
    const answered = await poll.promise;
    if (answered === null) throw new Error(`plain ${compress}: no answer on ${dst}`);
    const size = Number((await must(inHost(src, ['stat', '-c', '%s', file]))).trim());
    const c = parseCheckpointStats(ck);
    const r = parseCheckpointStats(rs);
    return {
      strategy: compress === 'zstd' ? 'plain-zstd' : 'plain-none',
      downtimeMs: answered - t0,
      checkpointMs: t1 - t0,
      copyMs: t2 - t1,
      restoreMs: t3 - t2,
      answerAfterRestoreMs: answered - t3,
      archiveBytes: size,
      criuFrozenMs: ms(c.frozenUs),
      runcCheckpointMs: ms(c.runtimeDurationUs),
      podmanCheckpointMs: ms(c.podmanDurationUs),
      podmanRestoreMs: ms(r.podmanDurationUs),
      runcRestoreMs: ms(r.runtimeDurationUs),
      memhogRssKiB: await memhogRss(dst, name),
    };
  } finally {
    for (const h of [src, dst]) {
      await run(inHost(h, ['podman', 'rm', '-f', '-t', '0', name]));
      await run(inHost(h, ['rm', '-f', file]));
    }
  }
}

let nextPort = 36000 + Math.floor(Math.random() * 4000);

async function postCopyOnce(src: string, dst: string, memhog: string, mib: number, dirtyPct: number): Promise<Run> {
  const name = `bpp-${uid()}`;
  const port = freshPort();
  nextPort += 2;
  const m: LazyMigration = { migrationId: `bpp-${uid()}`, serverPort: nextPort, lazyPort: nextPort + 1, deadlineSeconds: 600 };
  const S = hostRunner(src);
  const D = hostRunner(dst);
  const target = sshTarget(dst);
  const archive = `${pathsOf(m).dir}/checkpoint.tar`;
  let keepDir: string | undefined;
  try {
    await startMemhog(src, name, port, memhog, mib, dirtyPct);
    await sleep(Math.max(2000, mib * 8));
    // Before the freeze (Ferry: preflight).
    const split = { node: process.execPath, splitScript: SPLIT_SCRIPT };
    await installLazyRuntime(S, m, split);
    await installLazyRuntime(D, m, split);
    await raisePipeMaxSize(S, m);
    await openPageTunnel(S, m, target);
    const poll = firstAnswer(hostInfo(dst).address, port, { everyMs: 5, timeoutMs: 300_000 });
    const t0 = now();
    const ck = await prepareLazyCheckpoint({ runner: S }, m, { container: name, archive, compression: 'none' });
    const t1 = now();
    keepDir = ck.keepDir;
    if (ck.mode !== 'lazy' || !ck.keepDir) throw new Error(`post-copy: the split failed, the archive is whole (${ck.imagesDir})`);
    await serveLazyPages(S, m, ck.keepDir);
    const t2 = now();
    await must(inHost(src, scpArgv(archive, dst)));
    const t3 = now();
    const rs = await lazyRestore({ runner: D }, m, { archive, extra: ['--ignore-static-ip', '--ignore-static-mac'], timeoutMs: 300_000 });
    const t4 = now();
    const answered = await poll.promise;
    if (answered === null) throw new Error(`post-copy: no answer on ${dst}`);
    const allAt = await waitAllPagesCopied(D, m, { timeoutMs: 600_000 });
    const state = await readLazyCopy(D, m);
    if (state.state !== 'complete') throw new Error(`post-copy: copy ${state.state}`);
    await finishOnSource(S, D, m, target, ck.keepDir);
    keepDir = undefined;
    const size = Number((await must(inHost(src, ['stat', '-c', '%s', archive]))).trim());
    const c = parseCheckpointStats(ck.stats);
    const r = parseCheckpointStats(rs);
    return {
      strategy: 'post-copy',
      downtimeMs: answered - t0,
      checkpointMs: t1 - t0,
      serveMs: t2 - t1,
      copyMs: t3 - t2,
      restoreMs: t4 - t3,
      answerAfterRestoreMs: answered - t4,
      // The destination's clock is this machine's clock: the bed's hosts are namespaces of one machine.
      allPagesMs: allAt - t0,
      archiveBytes: size,
      criuFrozenMs: ms(c.frozenUs),
      runcCheckpointMs: ms(c.runtimeDurationUs),
      podmanCheckpointMs: ms(c.podmanDurationUs),
      podmanRestoreMs: ms(r.podmanDurationUs),
      runcRestoreMs: ms(r.runtimeDurationUs),
      splitMs: ck.split?.ms,
      lazyPages: ck.split?.lazyPages,
      memhogRssKiB: await memhogRss(dst, name),
    };
  } finally {
    await stopPageServer(S, m).catch(() => undefined);
    await closePageTunnel(S, m, target).catch(() => undefined);
    await restorePipeMaxSize(S, m).catch(() => undefined);
    for (const h of [src, dst]) await run(inHost(h, ['podman', 'rm', '-f', '-t', '0', name]));
    if (keepDir) await run(inHost(src, ['rm', '-rf', keepDir]));
    await removeLazyFiles(S, m).catch(() => undefined);
    await removeLazyFiles(D, m).catch(() => undefined);
  }
}

/**
 * Item 3 through podman: `reps` repetitions of each strategy, the order rotating per repetition;
 * ratios per repetition (post-copy ÷ plain of the same repetition).
 */
export async function postCopyPodman(reps: number, memhogPath: string, mib: number, hosts: { from: string; to: string } = { from: 'd', to: 'e' }, dirtyPct = 10): Promise<ItemResult[]> {
  const memhog = resolve(memhogPath);
  const { from, to } = hosts;
  const probes = {
    [from]: await probeLazySupport(hostRunner(from), 'source', { node: process.execPath, script: SPLIT_SCRIPT }),
    [to]: await probeLazySupport(hostRunner(to), 'destination'),
  };
  for (const [h, p] of Object.entries(probes)) if (!p.ok) throw new Error(`host ${h} cannot do post-copy: ${p.reasons.join('; ')}`);
  const runs: Record<Strategy, Run[]> = { 'plain-zstd': [], 'plain-none': [], 'post-copy': [] };
  const order: Strategy[] = ['plain-zstd', 'post-copy', 'plain-none'];
  const load: string[] = [];
  const t = now();
  for (let i = 0; i < reps; i++) {
    const rot = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
    for (const s of rot) {
      load.push((await must(['cat', '/proc/loadavg'])).trim());
      const r = s === 'post-copy' ? await postCopyOnce(from, to, memhog, mib, dirtyPct) : await plainOnce(s === 'plain-zstd' ? 'zstd' : 'none', from, to, memhog, mib, dirtyPct);
      runs[s].push(r);
    }
  }
  const pick = (s: Strategy, k: keyof Run) => runs[s].map((r) => Number(r[k] ?? NaN));
  const keys: (keyof Run)[] = [
    'downtimeMs',
    'checkpointMs',
    'serveMs',
    'copyMs',
    'restoreMs',
    'answerAfterRestoreMs',
    'allPagesMs',
    'archiveBytes',
    'criuFrozenMs',
    'runcCheckpointMs',
    'podmanCheckpointMs',
    'podmanRestoreMs',
    'runcRestoreMs',
    'splitMs',
    'memhogRssKiB',
  ];
  const table = Object.fromEntries((Object.keys(runs) as Strategy[]).map((s) => [s, Object.fromEntries(keys.map((k) => [k, summarize(pick(s, k).filter(Number.isFinite))]).filter(([, v]) => (v as { n: number }).n > 0))]));
  return [
    {
      item: 3,
      title: `post-copy through podman (src/postcopy) ÷ plain podman checkpoint/restore, downtime, ${mib} MiB rewriting ${dirtyPct} %/s, ${from} -> ${to}`,
      goal: '≤ 0.5',
      ratio: ratios(pick('post-copy', 'downtimeMs'), pick('plain-zstd', 'downtimeMs')),
      met: (r) => r <= 0.5,
      details: {
        ratioVsPlainNone: ratios(pick('post-copy', 'downtimeMs'), pick('plain-none', 'downtimeMs')),
        table,
        runs,
        load,
        probes,
        itemMs: Math.round(now() - t),
      },
      notes: [
        'plain-zstd is what Ferry does by default (podman compresses with zstd); plain-none is the same without compression.',
        'allPagesMs is the post-copy risk window: from the freeze until every page is on the destination; until then the source keeps the whole dump on its disk and can take the container back.',
      ],
    },
  ];
}

// Standalone: node .../bench/items/postcopyPodman.js [MIB] [REPS] [DIRTY_PCT_PER_S] [MEMHOG]
if (require.main === module) {
  const [mib = '256', reps = '1', dirty = '10', memhog = 'test-output/bench/memhog'] = process.argv.slice(2);
  postCopyPodman(Number(reps), memhog, Number(mib), { from: 'd', to: 'e' }, Number(dirty))
    .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
    .catch((e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    });
}
