import type { MigrationEvent } from '../../src/engine/model';
import { blackhole, filesIn, PrivateSshd, sleep, withPrivateSshd } from '../support/faults';
import type { Scenario } from './scenario';

const progress = (step: string) => (e: MigrationEvent) => e.type === 'progress' && e.step === step && (e.bytes ?? 0) > 0;

// Each run gets a private sshd in host c (scenario.prepare), so cutting it cuts no one else.
let sshd: PrivateSshd | undefined;
const viaPrivateSshd = withPrivateSshd('c', (s) => (sshd = s));

/** The SSH link to the destination cut (sshd and its sessions killed: connections reset) or black-holed. */
export const NETWORK: Scenario[] = [
  {
    fault: 'SSH link cut (sshd + sessions killed), back 2 s later',
    where: 'checkpoint, while the archive streams to the destination (64 MB)',
    mb: 64,
    prepare: viaPrivateSshd,
    async inject(ctx) {
      await ctx.watch.when(progress('checkpoint'));
      await sshd?.kill();
      await sleep(2000);
      await sshd?.start();
      const rec = await ctx.watch.final;
      const t = rec.history.find((h) => h.step === 'transfer' && h.ok);
      return `transfer step ${t?.result?.alreadyDone ? 'found the archive already there' : 'sent the archive again'}`;
    },
    expect: ['succeeded'],
  },
  {
    fault: 'SSH link cut (sshd + sessions killed), back 2 s later',
    where: 'transfer step, mid-stream (64 MB)',
    mb: 64,
    prepare: viaPrivateSshd,
    async inject(ctx) {
      // The first cut makes the checkpoint's own stream fail, so the transfer step runs for real.
      await ctx.watch.when(progress('checkpoint'));
      await sshd?.kill();
      await sshd?.start();
      await ctx.watch.when(progress('transfer'));
      await sshd?.kill();
      await sleep(2000);
      await sshd?.start();
      const rec = await ctx.watch.final;
      return `transfer attempts: ${rec.history.filter((h) => h.step === 'transfer').length}`;
    },
    expect: ['succeeded'],
  },
  {
    fault: 'SSH link black-holed (iptables DROP, no RST) for 5 s',
    where: 'transfer step, mid-stream (64 MB)',
    mb: 64,
    prepare: viaPrivateSshd,
    async inject(ctx) {
      await ctx.watch.when(progress('checkpoint'));
      await sshd?.kill();
      await sshd?.start();
      await ctx.watch.when(progress('transfer'));
      const s = sshd as PrivateSshd;
      const lift = blackhole(s);
      ctx.undo(lift);
      await sleep(5000);
      lift();
      const rec = await ctx.watch.final;
      return `transfer attempts: ${rec.history.filter((h) => h.step === 'transfer').length}`;
    },
    expect: ['succeeded'],
  },
  {
    fault: 'destination host gone for good (sshd killed, never back)',
    where: 'checkpoint stream, then every transfer attempt',
    mb: 16,
    prepare: viaPrivateSshd,
    async inject(ctx) {
      await ctx.watch.when(progress('checkpoint'));
      await sshd?.kill();
      return undefined;
    },
    // A host that never comes back may keep a partial file nobody can reach to delete.
    keptArchive: 'dst',
    async operator(ctx) {
      const stray = filesIn(ctx.host.dst, ctx.cfg.workDir);
      return stray.length ? `stray file on the dead destination (expected, unreachable): ${stray.join(',')}` : 'nothing left on the destination';
    },
    expect: ['failed-rolled-back'],
    message: /transfer failed on host a: .*(cannot reach|ECONNREFUSED|SSH)/,
  },
];
