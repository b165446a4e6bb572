import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { bed, mustPodman, OUTPUT, uid } from '../support/bed';
import { holdQueue, privateSshd, viaSshd } from '../support/faults';
import type { Scenario } from './scenario';

function impostor(host: string, name: string): { host: string; id: string } {
  const id = mustPodman(host, 'run', '-d', '--name', name, bed().image, 'sleep', '100000');
  return { host, id };
}

/** Name clashes on the destination, and SSH host keys that do not match known_hosts. */
export const CONFLICTS: Scenario[] = [
  {
    fault: 'destination already has a container with that name',
    where: 'before the migration (preflight)',
    beforeMigrate: (name, host) => impostor(host.dst, name),
    async inject() {
      return undefined;
    },
    expect: ['failed'],
    message: /already has a container named/,
  },
  {
    fault: 'a container with that name appears on the destination after preflight',
    where: 'between checkpoint and restore (destination)',
    async inject(ctx) {
      await ctx.watch.started('checkpoint');
      const hold = await holdQueue(ctx.cfg, ctx.host.dst);
      ctx.undo(() => hold.resume());
      await ctx.watch.done('transfer');
      ctx.impostor = impostor(ctx.host.dst, ctx.name);
      await hold.resume();
      return undefined;
    },
    expect: ['failed-rolled-back'],
    message: /has another container named/,
  },
  {
    fault: 'destination SSH host key changed (not the one in known_hosts)',
    where: 'first SSH connection (preflight)',
    async prepare(cfg, undo) {
      const key = join(OUTPUT, `hostkey-${uid()}`);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      const s = await privateSshd('c', { hostKey: key });
      undo(() => s.kill());
      return viaSshd(cfg, s);
    },
    async inject() {
      return undefined;
    },
    expect: ['failed'],
    message: /host key does NOT match .*refusing to connect/,
  },
  {
    fault: 'destination SSH host key unknown (not in known_hosts)',
    where: 'first SSH connection (preflight)',
    async prepare(cfg, undo) {
      const s = await privateSshd('c', { trusted: false });
      undo(() => s.kill());
      return viaSshd(cfg, s);
    },
    async inject() {
      return undefined;
    },
    expect: ['failed'],
    message: /host key is not in .*refusing to connect/,
  },
];
