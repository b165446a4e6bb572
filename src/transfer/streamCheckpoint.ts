import { createReadStream, createWriteStream } from 'node:fs';
import { PassThrough, pipeline, Readable } from 'node:stream';
import { encryptStream } from '../archive/cipher';
import type { ArchiveKey } from '../archive/key';
import { coerceError } from '../errors/coerceError';
import type { CheckpointOptions } from '../podman/podman';
import type { CriuStats } from '../podman/parse';
import type { CommandRunner } from '../exec/runner';
import type { Podman } from '../podman/podman';
import { makeFifo, releaseFifoReader } from './fifo';
import { receiveRemote } from './receive';
import { teeHashed } from './tee';
import { StepError } from '../errors';
import { removeFile } from '../archive/localFiles';

/** Linux's default pipe capacity: the most one read of the named pipe returns. */
const PIPE_CAPACITY = 64 * 1024;

export interface StreamTarget {
  runner: CommandRunner;
  /** The destination's work dir and the temporary name the archive lands under there. */
  dir: string;
  partPath: string;
  finalPath: string;
}

export interface StreamedCheckpoint {
  stats: CriuStats;
  sha256: string;
  bytes: number;
  /** True when the destination holds the whole archive, hash-checked, under its final name. */
  streamed: boolean;
  streamError?: string;
}

/**
 * `podman container checkpoint --export` into a named pipe, read once and copied both to
 * the local archive (`localPart`) and, over the kept-warm SSH connection, to the
 * destination, hashing on both ends. The transfer thus overlaps the archive's writing
 * instead of following it. The local copy is kept on purpose: it is what a retried
 * transfer resends and what rollback restores from if an in-place restore fails, so a
 * failed stream costs nothing but the time of an ordinary transfer afterwards.
 * With `encryptWith`, bytes are encrypted as they leave the pipe: the plain archive is never
 * written anywhere, and the hashes are of the encrypted bytes, the ones that are stored.
 */
export async function checkpointStreaming(
  podman: Podman,
  localRunner: CommandRunner,
  container: string,
  local: { part: string; fifo: string },
  opts: CheckpointOptions,
  target: StreamTarget | undefined,
  extra: { onBytes?: (bytes: number) => void; encryptWith?: ArchiveKey } = {},
): Promise<StreamedCheckpoint> {
  const { fifo, part: localPart } = local;
  await removeFile(fifo);
  await makeFifo(localRunner, fifo);
  try {
    const remoteIn = new PassThrough({ highWaterMark: 1 << 20 });
    const receiving = target ? receiveRemote(target.runner, target.dir, { part: target.partPath, final: target.finalPath }, { sha256: '' }, remoteIn, opts.timeoutMs ?? 3_600_000) : undefined;
    receiving?.catch(() => undefined);
    // A read from a pipe returns at most what the pipe holds (64 KiB), but Node allocates a
    // buffer of highWaterMark for every read: at 1 MiB that was 16 times the archive in garbage,
    // and the collections it forced, in a worker's large heap, made podman wait on a full pipe.
    // Measured on the bed, a 256 MiB container's checkpoint: 3.1 s, then 2.1 s with 64 KiB.
    const fromPodman = createReadStream(fifo, { highWaterMark: PIPE_CAPACITY });
    // pipeline, not pipe: a read error must reach the reader of the cipher's output.
    const source: Readable = extra.encryptWith ? pipeline(fromPodman, encryptStream(extra.encryptWith), () => undefined) : fromPodman;
    const copying = teeHashed(source, createWriteStream(localPart, { mode: 0o600 }), receiving ? { sink: remoteIn, done: receiving } : undefined, extra.onBytes);
    copying.catch(() => undefined);
    const checkpointing = podman.checkpoint(container, fifo, opts);
    // If podman fails before it opened the pipe, the reader would wait for it forever.
    checkpointing.catch(() => releaseFifoReader(fifo));
    const [ck, copy] = await Promise.allSettled([checkpointing, copying]);
    if (ck.status === 'rejected' || copy.status === 'rejected') {
      // The receiver renames what it got without knowing the hash: end its input, let it
      // finish, and remove whatever it wrote, so no partial archive is left there under
      // its final name (rollback only cleans archives the record knows about).
      remoteIn.end();
      if (target && receiving) {
        await receiving.catch(() => undefined);
        await target.runner.run(['rm', '-f', '--', target.finalPath, target.partPath]).catch(() => undefined);
      }
      if (ck.status === 'rejected') throw ck.reason;
      const err = coerceError((copy as PromiseRejectedResult).reason);
      // Podman has finished (the copy kept reading): the container is checkpointed and
      // rollback can restore it in place. Retrying on a full disk would only freeze it again.
      throw new StepError(`cannot write the checkpoint archive ${localPart}: ${err.message}`, { code: 'ARCHIVE_WRITE_FAILED', permanent: (err as NodeJS.ErrnoException).code === 'ENOSPC', cause: err });
    }
    const { sha256, bytes } = copy.value;
    let streamError = copy.value.optionalError?.message;
    let streamed = false;
    if (target && receiving && !streamError) {
      try {
        const got = await receiving;
        if (got.sha256 === sha256 && got.bytes === bytes && got.moved) {
          streamed = true;
        } else {
          streamError = `destination received ${got.bytes} bytes with sha256 ${got.sha256}, expected ${bytes} bytes with ${sha256}`;
          // It was renamed before anyone could compare: take it away again.
          await target.runner.run(['rm', '-f', '--', target.finalPath, target.partPath]);
        }
      } catch (e: unknown) {
        streamError = coerceError(e).message;
      }
    }
    return { stats: ck.value, sha256, bytes, streamed, streamError };
  } finally {
    await removeFile(fifo);
  }
}
