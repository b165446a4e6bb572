import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { CommandRunner } from '../exec/runner';
import { CommandError } from '../errors';

/** A named pipe readable only by its owner; podman writes the archive into it. */
export async function makeFifo(runner: CommandRunner, path: string): Promise<void> {
  const argv = ['mkfifo', '-m', '600', '--', path];
  const res = await runner.run(argv);
  if (res.code !== 0) throw new CommandError(runner.where, argv, res.code, res.stderr);
}

/**
 * A reader blocked in open() of a FIFO waits for a writer forever. When the writer
 * (podman) failed before opening it, open it for writing ourselves and close it at once:
 * the reader then sees an empty stream and ends. ENXIO means nobody is reading: fine.
 */
export async function releaseFifoReader(path: string): Promise<void> {
  try {
    const fh = await open(path, constants.O_WRONLY | constants.O_NONBLOCK);
    await fh.close();
  } catch {
    // No reader left, or the FIFO is already gone: nothing is blocked.
  }
}

/**
 * An export left behind by a worker that died during a checkpoint: podman opens the pipe
 * only once CRIU has dumped, and with its reader gone it waits in open() for ever, holding
 * the container's lock, so every later podman command on that container hangs behind it
 * (found by the nemesis: a worker killed without its children). Its command line names this
 * migration's pipe, which nothing else does: it is killed, and the container is then in the
 * state a worker killed with its children leaves, which restoreFrozen knows how to bring back.
 */
export async function stopStrayExport(runner: CommandRunner, fifo: string): Promise<boolean> {
  const res = await runner.run(['pkill', '-KILL', '-f', '--', `--export ${fifo}`]);
  if (res.code !== 0) return false;
  // Give podman's own clean-up a moment to release the container's lock.
  await new Promise((r) => setTimeout(r, 1000));
  return true;
}
