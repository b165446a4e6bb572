import { isAbsolute, join } from 'node:path';
import type { FerryConfig } from '../config/load';
import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import type { ContainerInfo } from '../podman/parse';
import type { Podman } from '../podman/podman';

/**
 * Brings back, where it stands, a container that a checkpoint froze. Two shapes are seen:
 * podman finished (state exited, Checkpointed true) and a plain in-place restore works; or
 * the worker died while podman was exporting (found by the fault suite): CRIU had dumped
 * and stopped the processes, podman never marked the container checkpointed, and the
 * rootfs-diff.tar it was writing is truncated. The CRIU images are whole and the rootfs is
 * still on disk, so without that truncated diff the in-place restore works.
 */
export async function restoreFrozen(local: Podman, runner: CommandRunner, info: ContainerInfo, config: FerryConfig, timeoutMs: number): Promise<'in place' | 'in place, without the truncated rootfs diff'> {
  const opts = { ...config.checkpoint, timeoutMs };
  // An earlier in-place restore whose podman was killed may have left the runtime holding the
  // container (running, unknown to podman): podman's restore would collide with it, or run a second.
  await local.reapRuntimeLeftover(info.id, { keepRunning: true });
  try {
    await local.restoreInPlace(info.name.replace(/^\//, ''), opts);
    return 'in place';
  } catch (first: unknown) {
    if (!info.staticDir || !isAbsolute(info.staticDir)) throw first;
    const argv = ['rm', '-f', '--', join(info.staticDir, 'rootfs-diff.tar')];
    const rm = await runner.run(argv);
    if (rm.code !== 0) throw new CommandError(runner.where, argv, rm.code, rm.stderr);
    await local.restoreInPlace(info.name.replace(/^\//, ''), opts);
    return 'in place, without the truncated rootfs diff';
  }
}
