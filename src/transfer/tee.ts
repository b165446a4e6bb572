import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';

export interface TeeResult {
  sha256: string;
  bytes: number;
  /** Why the optional sink was dropped part way, if it was. */
  optionalError?: Error;
}

/**
 * Copies `source` to a required sink (the local archive: its failure fails the copy) and
 * an optional one (the stream to the destination: its failure only drops it, the local
 * copy goes on), hashing as it goes. Backpressure is honoured on both, so memory stays
 * bounded; a dead optional sink (`optionalDone` settled) is never waited for.
 */
export async function teeHashed(
  source: Readable,
  required: Writable,
  optional: { sink: Writable; done: Promise<unknown> } | undefined,
  onBytes?: (bytes: number) => void,
): Promise<TeeResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  let alive = optional !== undefined;
  let optionalError: Error | undefined;
  const optionalEnded = optional
    ? optional.done.then(
        () => undefined,
        (e: unknown) => e,
      )
    : Promise.resolve(undefined);
  void optionalEnded.then((e) => {
    if (alive) {
      // The receiver ended before the archive did: drop it, keep the local copy going.
      alive = false;
      optionalError = e instanceof Error ? e : new Error('the receiving end stopped before the archive was complete');
    }
  });
  // An error of the required sink must end the copy even while nobody waits for 'drain'.
  const requiredFailed = new Promise<never>((_, reject) => required.once('error', reject));
  requiredFailed.catch(() => undefined);
  optional?.sink.on('error', () => {
    // Reported through optional.done by whoever drives the receiving end.
  });
  for await (const chunk of source) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
    onBytes?.(bytes);
    const waits: Promise<unknown>[] = [];
    if (!required.write(buf)) waits.push(Promise.race([once(required, 'drain'), requiredFailed]));
    if (alive && optional && !optional.sink.write(buf)) waits.push(Promise.race([once(optional.sink, 'drain'), optionalEnded]));
    await Promise.all(waits);
  }
  const finished = Promise.race([once(required, 'finish'), requiredFailed]);
  required.end();
  await finished;
  if (alive && optional) {
    alive = false;
    optional.sink.end();
  }
  return { sha256: hash.digest('hex'), bytes, optionalError };
}
