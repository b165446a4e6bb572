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
export async function teeHashed(source: Readable, required: Writable, optional: { sink: Writable; done: Promise<unknown> } | undefined, onBytes?: (bytes: number) => void): Promise<TeeResult> {
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
  // When the local archive cannot be written (disk full), the source must still be read
  // to its end: podman is writing into it, and a podman blocked on a full pipe keeps the
  // container frozen until a time limit kills it half-way (found by the fault suite).
  let requiredError: Error | undefined;
  required.on('error', (e: Error) => {
    requiredError ??= e;
  });
  // One listener for the whole copy (one per blocked write piled up past Node's limit).
  const requiredFailed = new Promise<void>((r) => required.once('error', () => r()));
  const drained = (w: Writable) =>
    once(w, 'drain').then(
      () => undefined,
      () => undefined,
    );
  optional?.sink.on('error', () => {
    // Reported through optional.done by whoever drives the receiving end.
  });
  for await (const chunk of source) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
    onBytes?.(bytes);
    if (requiredError) continue;
    const waits: Promise<unknown>[] = [];
    if (!required.write(buf)) waits.push(Promise.race([drained(required), requiredFailed]));
    if (alive && optional && !optional.sink.write(buf)) waits.push(Promise.race([once(optional.sink, 'drain'), optionalEnded]));
    await Promise.all(waits);
  }
  if (requiredError) {
    if (alive && optional) {
      alive = false;
      // Ended, not destroyed: a destroyed stream never tells the SSH channel its input is
      // over, so the receiver would wait for more until the step's time limit (found by
      // the fault suite: a full source disk cost three full time limits, container frozen).
      optional.sink.end();
    }
    throw requiredError;
  }
  const finished = Promise.race([once(required, 'finish'), new Promise((_, reject) => required.once('error', reject))]);
  required.end();
  await finished;
  // False positive: the 'error' listener may set it during the await, which TypeScript does
  // not see, so it still holds the narrowing from the check above and thinks this throws no Error.
  // eslint-disable-next-line @typescript-eslint/only-throw-error
  if (requiredError) throw requiredError;
  if (alive && optional) {
    alive = false;
    optional.sink.end();
  }
  return { sha256: hash.digest('hex'), bytes, optionalError };
}
