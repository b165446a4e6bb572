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
