import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { StepError } from '../errors';
import { receiveRemote } from '../transfer/receive';
import { markHandedOver } from '../archive/frozenMarker';
import type { Step, StepContext } from './context';
import type { MigrationRecord } from '../engine/model';

const PROGRESS_EVERY_MS = 250;

/**
 * Source → destination over the kept-warm SSH connection. Usually the checkpoint step
 * streamed the archive already and the destination hash-checked it: a size check is then
 * all that is left. Otherwise the local archive is streamed into a temporary file on an
 * exec channel and given its final name once its size is right; restore then checks its
 * hash against the one taken at checkpoint time before podman sees it.
 */
export const transfer: Step = async (ctx) => {
  const { rec } = ctx;
  const archive = rec.archive;
  if (!archive) throw new StepError(`migration ${rec.id} has no archive to transfer`, { code: 'NO_ARCHIVE', permanent: true });
  const dest = ctx.remote(rec.to);
  const there = ctx.files.destination;
  const remotePath = there.archive;
  if (archive.streamed) {
    // The destination hashed the stream as it arrived and the checkpoint step compared it
    // before recording archive.streamed; no remote call here, it would sit inside the downtime.
    // Should the file vanish since, restore fails (NO_ARCHIVE) and the migration rolls back.
    return { result: { alreadyDone: true, streamed: true, bytes: 0 }, patch: await handOver(ctx) };
  }
  const already = await dest.runner.run(['sha256sum', '--', remotePath]);
  if (already.code === 0 && already.stdout.startsWith(archive.sha256)) {
    return { result: { alreadyDone: true, bytes: 0 }, patch: await handOver(ctx) };
  }
  const part = there.part;
  let sent = 0;
  let lastReport = 0;
  const started = Date.now();
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      const now = Date.now();
      if (now - lastReport >= PROGRESS_EVERY_MS) {
        lastReport = now;
        void ctx.progress({ percent: Math.floor((sent / Math.max(1, archive.bytes)) * 100), bytes: sent, totalBytes: archive.bytes });
      }
      done(null, chunk);
    },
  });
  const input = createReadStream(ctx.files.source.archive, { highWaterMark: 1 << 20 }).pipe(counter);
  const got = await receiveRemote(dest.runner, there.dir, { part, final: remotePath }, { bytes: archive.bytes }, input, ctx.config.timeouts.step.transfer);
  if (got.bytes !== archive.bytes || !got.moved) {
    await dest.runner.run(['rm', '-f', '--', part]);
    if (got.writeError) {
      throw new StepError(`cannot store the archive on host ${rec.to}: ${got.writeError} in ${there.dir} (received ${got.bytes} of ${archive.bytes} bytes)`, { code: 'DESTINATION_DISK_FULL', permanent: true });
    }
    throw new StepError(`archive arrived incomplete on host ${rec.to}: ${got.bytes} of ${archive.bytes} bytes; will send it again`, { code: 'TRANSFER_INCOMPLETE' });
  }
  const ms = Date.now() - started;
  const handedOver = await handOver(ctx);
  await ctx.progress({ percent: 100, bytes: sent, totalBytes: archive.bytes });
  return {
    result: { bytes: sent, ms, mbPerS: ms > 0 ? Math.round((sent / 1e6 / (ms / 1000)) * 10) / 10 : null },
    patch: { bytesTransferred: sent, ...handedOver },
  };
};

/**
 * From the end of this step a restore may start on the destination. Said on this host's own
 * disk first (the frozen marker), where a Redis crash cannot rewind it: rollback reads it
 * when the destination cannot be asked (docs/reliability.md, finding 19).
 */
async function handOver(ctx: StepContext): Promise<Pick<MigrationRecord, 'handedOverRunId'>> {
  const { rec } = ctx;
  await ctx.fence();
  const kept = await markHandedOver(ctx.files.source.dir, rec.id, Date.now(), await ctx.redisRunId());
  if (!kept) {
    throw new StepError(`host ${rec.from} holds no frozen marker for migration ${rec.id}: the container may no longer be frozen for it, so its archive is not handed to host ${rec.to}`, { code: 'NO_FROZEN_MARKER', permanent: true });
  }
  // The record keeps it too, for a restore that cannot ask this host (steps/sourceNotRunning.ts).
  return { handedOverRunId: kept.runId };
}
