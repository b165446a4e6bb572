import { join } from 'node:path';
import type { MigrationEvent, MigrationRecord } from '../../src/engine/model';
import { containerState, onHost } from '../support/bed';
import { flipByte, holdQueue, hostFile, PrivateSshd, sleep, withPrivateSshd } from '../support/faults';
import type { Scenario } from './scenario';

/** A tmpfs of `size` over one host's work dir for this test (no one else's archives live there). */
function smallDisk(host: string, size: string) {
  return async (cfg: Parameters<NonNullable<Scenario['prepare']>>[0], undo: (fn: () => unknown) => void) => {
    onHost(host, ['mkdir', '-p', '-m', '700', cfg.workDir]);
    const r = onHost(host, ['mount', '-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', cfg.workDir]);
    if (r.code !== 0) throw new Error(`mount tmpfs on ${host}: ${r.stderr}`);
    undo(() => onHost(host, ['umount', '-l', cfg.workDir]));
    return cfg;
  };
}

/** podman's graph root inside every bed host (a bind mount of the host's var-lib-containers). */
const STORAGE_ROOT = '/var/lib/containers/storage';

/** Every container podman's storage holds on a host, also those libpod no longer knows (`podman ps --external`). */
function storageContainers(host: string): { id: string; name: string; status: string }[] {
  const r = onHost(host, ['podman', 'ps', '-a', '--external', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
  if (r.code !== 0) throw new Error(`podman ps --external on ${host}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id, name, ...status] = l.split(' ');
      return { id, name, status: status.join(' ') };
    });
}

/**
 * The whole of one host's podman storage on a tmpfs with `headroomKiB` free, for this test.
 * Whole, not one sub-folder: on a real disk the layers, the container folders and the
 * JSON files podman rewrites share one file system, so what fails when it is full (and
 * what podman can still clean up) is only realistic that way. Not `overlay` alone either:
 * podman's overlay driver unmounts its home folder when it exits if that is a mount point
 * (seen on the bed: the tmpfs vanished under the half-restored layer). Seeded with `cp -a`
 * on a staging tmpfs and moved into place, so podman never sees an empty storage; the
 * disk copy is not written while it is hidden, so unmounting gives the host back exactly
 * as it was. The host must hold no containers: they would be hidden for the run.
 */
function smallStorage(host: string, headroomKiB: number) {
  return async (cfg: Parameters<NonNullable<Scenario['prepare']>>[0], undo: (fn: () => unknown) => void) => {
    if (onHost(host, ['findmnt', '-n', '--mountpoint', STORAGE_ROOT]).code === 0) throw new Error(`${STORAGE_ROOT} on ${host} is already a mount point (an earlier run not undone?)`);
    const others = storageContainers(host);
    if (others.length) throw new Error(`host ${host} holds containers (${others.map((c) => c.name).join(', ')}); its storage cannot be swapped for a tmpfs under them`);
    const du = onHost(host, ['du', '-sk', STORAGE_ROOT]);
    const usedKiB = Number(du.stdout.split(/\s/)[0]);
    if (du.code !== 0 || !Number.isInteger(usedKiB)) throw new Error(`du ${STORAGE_ROOT} on ${host}: ${du.stderr}`);
    const stage = `${cfg.workDir}-storage`;
    const must = (argv: string[]) => {
      const r = onHost(host, argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} on ${host}: ${r.stderr}`);
    };
    must(['mkdir', '-p', '-m', '700', stage]);
    try {
      must(['mount', '-t', 'tmpfs', '-o', `size=${usedKiB + headroomKiB}k,mode=0700`, 'tmpfs', stage]);
      try {
        must(['cp', '-a', `${STORAGE_ROOT}/.`, `${stage}/`]);
        must(['mount', '--move', stage, STORAGE_ROOT]);
      } catch (e: unknown) {
        onHost(host, ['umount', stage]);
        throw e;
      }
    } finally {
      onHost(host, ['rmdir', stage]);
    }
    undo(async () => {
      // What is left in the tmpfs would vanish with it, but not its runroot entries, lock or
      // network: podman removes it first, while the storage it lives in is still there.
      for (const c of storageContainers(host)) onHost(host, ['podman', 'rm', '-f', '-t', '0', c.id]);
      for (let i = 0; i < 50; i++) {
        if (onHost(host, ['umount', STORAGE_ROOT]).code === 0) return;
        await sleep(100);
      }
      // Busy for 5 s: detach it anyway, new podman commands must see the real storage again.
      const r = onHost(host, ['umount', '-l', STORAGE_ROOT]);
      process.stderr.write(`smallStorage: ${STORAGE_ROOT} on ${host} was busy; lazy umount ${r.code === 0 ? 'done' : `failed: ${r.stderr}`}\n`);
    });
    return cfg;
  };
}

/** Each failed restore attempt in a few words (how podman's message starts and ends), for the table's notes. */
function restoreTries(rec: MigrationRecord): string {
  return rec.history
    .filter((h) => h.step === 'restore' && h.ok === false)
    .map((h) => {
      const podman = ((h.error ?? '').split('Error: ').pop() ?? '').replace(/\b[0-9a-f]{64}\b/g, '<ctr>');
      const clauses = podman.split(': ');
      return `${h.attempt}: ${podman.split(' ').slice(0, 3).join(' ').replace(/:$/, '')} … ${clauses[clauses.length - 1]}`;
    })
    .join('; ');
}

let sshd: PrivateSshd | undefined;

/** Full disks and flipped bytes: the checksum must stop a bad archive before restore. */
export const STORAGE: Scenario[] = [
  {
    fault: 'destination disk full (1 MB tmpfs work dir, 8 MB archive)',
    where: 'checkpoint stream and transfer step (destination)',
    mb: 8,
    prepare: smallDisk('c', '1m'),
    expect: ['failed-rolled-back'],
    message: /No space left on device/,
    async inject() {
      return undefined;
    },
  },
  {
    fault: 'destination podman storage full (whole storage on a tmpfs with 4 MB free, 8 MB archive)',
    where: 'restore --import on the destination, unpacking the archive',
    mb: 8,
    // The archive lands in the work dir (main disk), whole; only restore writes into the
    // storage: ~300 KB of CRIU images fit, the 8 MB root file-system diff does not.
    prepare: smallStorage('c', 4096),
    async inject(ctx) {
      // The fault is restore's alone: transfer must have put the whole archive on c.
      await ctx.watch.done('transfer');
      const rec = await ctx.watch.final;
      return `archive reached c; restore tries: ${restoreTries(rec) || 'none failed'}`;
    },
    expect: ['failed-rolled-back'],
    message: /no space left on device/i,
    // Some runs, podman cannot even delete the half-made copy (its database cannot grow on
    // the full disk): the container must come back on a anyway, and the record say so.
    strandedOnDestination: true,
    // A copy that only podman's storage still knows (its removal failed half-way) is
    // invisible to `podman container inspect`, but it keeps the container's ID taken on c.
    async check(ctx) {
      return storageContainers(ctx.host.dst)
        .filter((c) => c.name === ctx.name && containerState(ctx.host.dst, ctx.name) === null)
        .map((c) => `left behind on ${ctx.host.dst}: a copy only podman's storage knows (${c.id.slice(0, 12)}, ${c.status}; seen by podman ps --external)`);
    },
  },
  {
    fault: 'source disk full (1 MB tmpfs work dir, 8 MB archive)',
    where: 'checkpoint export (source); checkpoint time limit 20 s',
    mb: 8,
    // A short limit, so a regression (the step waiting for its time limit, container
    // frozen meanwhile: seen twice) costs the test 20 s per attempt instead of 600.
    top: { timeouts: { sshConnectMs: 4000, step: { checkpoint: 20_000 } } },
    prepare: smallDisk('a', '1m'),
    expect: ['failed-rolled-back'],
    message: /cannot write the checkpoint archive \S+: ENOSPC: no space left on device/,
    async inject() {
      return undefined;
    },
    // The full disk must end the checkpoint at once and for good: one attempt, no time limit.
    async check(_ctx, rec) {
      const tries = rec.history.filter((h) => h.step === 'checkpoint');
      const timedOut = tries.filter((h) => (h.error ?? '').includes('time limit'));
      return tries.length === 1 && timedOut.length === 0 ? [] : [`checkpoint ran ${tries.length} times, ${timedOut.length} ended by the time limit`];
    },
  },
  {
    fault: 'archive corrupted on the destination (1 byte flipped)',
    where: 'between transfer and restore (destination)',
    mb: 4,
    async inject(ctx) {
      // Hold the destination's queue so restore waits while the byte is flipped.
      await ctx.watch.started('checkpoint');
      const hold = await holdQueue(ctx.cfg, ctx.host.dst);
      ctx.undo(() => hold.resume());
      await ctx.watch.done('transfer');
      const rec = await ctx.rec();
      flipByte(hostFile(ctx.host.dst, join(ctx.cfg.workDir, rec.archive?.file ?? 'none')));
      await hold.resume();
      return undefined;
    },
    expect: ['failed-rolled-back'],
    message: /does not match its checksum/,
  },
  {
    fault: 'archive corrupted on the source after it was hashed (1 byte flipped)',
    where: 'between checkpoint and transfer (source; the checkpoint stream cut, so transfer resends the bad copy)',
    mb: 4,
    prepare: withPrivateSshd('c', (s) => (sshd = s)),
    async inject(ctx) {
      await ctx.watch.started('checkpoint');
      const hold = await holdQueue(ctx.cfg, ctx.host.src);
      ctx.undo(() => hold.resume());
      await ctx.watch.when((e: MigrationEvent) => e.type === 'progress' && e.step === 'checkpoint');
      await sshd?.kill();
      await sshd?.start();
      await ctx.watch.done('checkpoint');
      const rec = await ctx.rec();
      const streamed = rec.archive?.streamed;
      flipByte(hostFile(ctx.host.src, join(ctx.cfg.workDir, rec.archive?.file ?? 'none')));
      await hold.resume();
      return streamed ? 'the checkpoint stream had completed before the cut: the destination copy is intact' : 'checkpoint stream was cut; transfer had to resend';
    },
    expect: ['failed-rolled-back', 'succeeded'],
    message: /does not match its checksum|^$/,
  },
];
