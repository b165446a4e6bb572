import type { MigrationEvent } from '../../src/engine/model';
import { PrivateSshd, sleep, withPrivateSshd } from '../support/faults';
import type { Scenario } from './scenario';

const progress =
  (step: string, test: (e: MigrationEvent) => boolean = () => true) =>
  (e: MigrationEvent) =>
    e.type === 'progress' && e.step === step && test(e);

let sshd: PrivateSshd | undefined;

/**
 * SIGKILL of a worker inside each step, then the worker started again. Short steps are made
 * to last (a podman stand-in sleeping around one sub-command, or a 64 MB container) so the
 * kill lands inside them; the note of each run says whether it did. "tree" kills what the
 * worker started too (podman, runc, CRIU, ssh), as systemd kills a unit's whole cgroup.
 */
export const KILLS: Scenario[] = [
  {
    fault: 'worker SIGKILL (+children)',
    where: 'preflight (source worker)',
    podman: { src: { match: 'container inspect', sleepS: 3, when: 'before' } },
    async inject(ctx) {
      await ctx.watch.started('preflight');
      await sleep(800);
      return ctx.killAndRestart('src', true, 'preflight');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (node only; podman runs on)',
    where: 'checkpoint, right after the CRIU dump (source worker)',
    podman: { src: { match: 'container checkpoint', sleepS: 3, when: 'after' } },
    async inject(ctx) {
      await ctx.watch.when(progress('checkpoint'));
      await sleep(1500);
      return ctx.killAndRestart('src', false, 'checkpoint');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (+children)',
    where: 'checkpoint, at once (source worker)',
    mb: 64,
    async inject(ctx) {
      await ctx.watch.when(progress('checkpoint'));
      return ctx.killAndRestart('src', true, 'checkpoint');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (+children)',
    where: 'checkpoint, 300 ms in: podman exporting 64 MB (source worker)',
    mb: 64,
    async inject(ctx) {
      await ctx.watch.when(progress('checkpoint'));
      await sleep(300);
      return ctx.killAndRestart('src', true, 'checkpoint');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (+children)',
    where: 'transfer step, mid-stream of 64 MB (source worker; the stream during checkpoint was cut first, so the transfer step really sends)',
    mb: 64,
    prepare: withPrivateSshd('c', (s) => (sshd = s)),
    async inject(ctx) {
      await ctx.watch.when(progress('checkpoint', (e) => (e.bytes ?? 0) > 0));
      await sshd?.kill();
      await sshd?.start();
      await ctx.watch.when(progress('transfer', (e) => (e.bytes ?? 0) > 0));
      return ctx.killAndRestart('src', true, 'transfer');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (node only; podman runs on)',
    where: 'restore, right after podman restored (destination worker)',
    podman: { dst: { match: 'container restore', sleepS: 3, when: 'after' } },
    async inject(ctx) {
      await ctx.watch.when(progress('restore'));
      await sleep(1500);
      return ctx.killAndRestart('dst', false, 'restore');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (+children)',
    where: 'restore, during podman restore of 64 MB (destination worker)',
    mb: 64,
    async inject(ctx) {
      await ctx.watch.when(progress('restore'));
      await sleep(300);
      return ctx.killAndRestart('dst', true, 'restore');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (+children)',
    where: 'verify (destination worker)',
    podman: { dst: { match: 'container inspect', sleepS: 3, when: 'before' } },
    async inject(ctx) {
      await ctx.watch.started('verify');
      await sleep(800);
      return ctx.killAndRestart('dst', true, 'verify');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (+children)',
    where: 'cleanup, after the source container was removed (source worker)',
    podman: { src: { match: 'container rm', sleepS: 3, when: 'after' } },
    async inject(ctx) {
      await ctx.watch.started('cleanup');
      await sleep(1500);
      return ctx.killAndRestart('src', true, 'cleanup');
    },
    expect: ['succeeded'],
  },
  {
    fault: 'worker SIGKILL (+children)',
    where: 'rollback, after the in-place restore (source worker; restore broken on the destination)',
    top: { retry: { backoffMs: 200, attempts: { restore: 1, rollback: 4 } } },
    podman: {
      dst: { failOn: 'container restore', message: 'injected: OCI runtime broken on this host' },
      src: { match: 'container restore', sleepS: 3, when: 'after' },
    },
    async inject(ctx) {
      await ctx.watch.started('rollback');
      await sleep(1500);
      return ctx.killAndRestart('src', true, 'rollback');
    },
    expect: ['failed-rolled-back'],
    message: /restore failed on host c/,
  },
];
