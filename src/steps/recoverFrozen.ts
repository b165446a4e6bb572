import { isAbsolute, join } from 'node:path';
import type { FerryConfig } from '../config/load';
import { CommandError, coerceError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import type { ContainerInfo } from '../podman/parse';
import type { Podman } from '../podman/podman';

/** podman's words when CNI refuses the address an in-place restore asks for. */
const ADDRESS_TAKEN = /requested IP address (\S+) is not available/i;

/**
 * Brings back, where it stands, a container that a checkpoint froze. Two shapes are seen:
 * podman finished (state exited, Checkpointed true) and a plain in-place restore works; or
 * the worker died while podman was exporting (found by the fault suite): CRIU had dumped
 * and stopped the processes, podman never marked the container checkpointed, and the
 * rootfs-diff.tar it was writing is truncated. The CRIU images are whole and the rootfs is
 * still on disk, so without that truncated diff the in-place restore works.
 *
 * And the address it had may be gone: the checkpoint released it, and while the container
 * was frozen another container on this host may have been given it (a small or busy network
 * recycles addresses; finding 13 met it after a killed checkpoint). podman then refuses
 * every in-place restore ("requested IP address … is not available"), which left the
 * container frozen. It comes back with a new address instead, said in `warning`, unless
 * its TCP connections are kept: those live only on the old address.
 */
export async function restoreFrozen(local: Podman, runner: CommandRunner, info: ContainerInfo, config: FerryConfig, timeoutMs: number): Promise<{ how: string; warning?: string }> {
  const opts = { ...config.checkpoint, timeoutMs };
  const name = info.name.replace(/^\//, '');
  // An earlier in-place restore whose podman was killed may have left the runtime holding the
  // container (running, unknown to podman): podman's restore would collide with it, or run a second.
  await local.reapRuntimeLeftover(info.id, { keepRunning: true });
  let withoutDiff = false;
  let lostAddress: string | null = null;
  // Each repair is tried once, and only when podman's refusal points at it.
  for (;;) {
    try {
      await local.restoreInPlace(name, { ...opts, newAddress: lostAddress !== null });
      const how = `in place${withoutDiff ? ', without the truncated rootfs diff' : ''}${lostAddress ? `, with a new IP address (${lostAddress} was taken)` : ''}`;
      return lostAddress ? { how, warning: `container "${name}" came back with a new IP address: its own, ${lostAddress}, had been given to another container while it was frozen` } : { how };
    } catch (e: unknown) {
      const err = coerceError(e);
      const taken = ADDRESS_TAKEN.exec(err instanceof CommandError ? `${err.message}\n${err.stderr}` : err.message);
      if (taken && lostAddress === null && !config.checkpoint.tcpEstablished) {
        // podman's own teardown of the failed attempt freed any lease this container held, so
        // another holds the address; the runtime holds nothing of this one (reaped above).
        lostAddress = taken[1];
        continue;
      }
      if (!taken && !withoutDiff && info.staticDir && isAbsolute(info.staticDir)) {
        const argv = ['rm', '-f', '--', join(info.staticDir, 'rootfs-diff.tar')];
        const rm = await runner.run(argv);
        if (rm.code !== 0) throw new CommandError(runner.where, argv, rm.code, rm.stderr);
        withoutDiff = true;
        continue;
      }
      throw e;
    }
  }
}
