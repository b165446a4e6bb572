import { isAbsolute, join } from 'node:path';
import type { FerryConfig } from '../config/load';
import { CommandError, coerceError, StepError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import type { ContainerInfo } from '../podman/parse';
import type { Podman } from '../podman/podman';
import { mendSplitDump } from './postCopy';

/** podman's words when the address an in-place restore asks for is held (CNI's host-local, then netavark's). */
const ADDRESS_TAKEN = /requested ip address (\S+) is (?:not available|already allocated)/i;

/**
 * podman (or CRIU under it) refused, exiting with a code: something to mend and try again.
 * Not a command killed by its time limit or stopped with its attempt, nor a step's own
 * verdict (a copy the runtime still runs): mending those would hide or double a container.
 */
export function refusedByPodman(e: unknown): e is CommandError {
  return e instanceof CommandError && e.exitCode !== null;
}

/**
 * Brings back, where it stands, a container that a checkpoint froze. Two shapes are seen:
 * podman finished (state exited, Checkpointed true) and a plain in-place restore works; or
 * the worker died while podman was exporting (found by the fault suite): CRIU had dumped
 * and stopped the processes, podman never marked the container checkpointed, and the
 * rootfs-diff.tar it was writing is truncated. The CRIU images are whole and the rootfs is
 * still on disk, so without that truncated diff the in-place restore works.
 *
 * And the address it had may be held. By the container itself (a killed podman left its
 * lease): podman's teardown of the refused attempt frees it, and the next attempt gets it.
 * Or by another container given it while this one was frozen (finding 13): then every
 * in-place restore is refused, which left the container frozen for good. After a second
 * refusal it comes back with a new address, said in `warning`, unless its TCP connections
 * are kept: those live only on the old address, and the operator must free it.
 */
export async function restoreFrozen(local: Podman, runner: CommandRunner, info: ContainerInfo, config: FerryConfig, timeoutMs: number, migrationId: string): Promise<{ how: string; warning?: string }> {
  const name = info.name.replace(/^\//, '');
  // A lazy (post-copy) checkpoint splits podman's folder for a moment: restored split, the
  // memory would be wrong. Asked of the host's disk, which a rewound record cannot forget.
  await mendSplitDump(runner, migrationId);
  // Every attempt shares the step's one time limit.
  const deadline = Date.now() + timeoutMs;
  let withoutDiff = false;
  let refusedAddress: string | null = null;
  let newAddress = false;
  for (;;) {
    // An earlier restore whose podman was killed (or timed out) may have left the runtime holding
    // the container (running, unknown to podman): podman's restore would collide with it, or run a second.
    await local.reapRuntimeLeftover(info.id, { keepRunning: true });
    try {
      await local.restoreInPlace(name, { ...config.checkpoint, newAddress, timeoutMs: Math.max(1000, deadline - Date.now()) });
      const how = `in place${withoutDiff ? ', without the truncated rootfs diff' : ''}${newAddress ? `, with a new IP address (${refusedAddress} was taken)` : ''}`;
      if (!newAddress) return { how };
      return { how, warning: `container "${name}" came back with a new IP address: its own, ${refusedAddress}, had been given to another container while it was frozen (an address fixed with --ip no longer applies to it)` };
    } catch (e: unknown) {
      const err = coerceError(e);
      if (!refusedByPodman(err) || Date.now() >= deadline) throw e;
      const taken = ADDRESS_TAKEN.exec(`${err.message}\n${err.stderr}`);
      if (taken && refusedAddress === null) {
        refusedAddress = taken[1];
        continue;
      }
      if (taken && !newAddress) {
        if (config.checkpoint.tcpEstablished) {
          throw new StepError(
            `container "${name}" cannot come back on ${local.where}: its IP address ${taken[1]} was given to another container while it was frozen, and its TCP connections (checkpoint.tcpEstablished) live only on that address. Free the address and the rollback's next attempt restores it`,
            { code: 'ADDRESS_TAKEN' },
          );
        }
        newAddress = true;
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
