import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { CommandError, StepError } from '../errors';
import type { Step } from './context';

// Constant script; the only values from outside travel as positional parameters ($1, $2),
// so nothing user-controlled is ever parsed by the remote shell.
const RECEIVE = 'umask 077 && mkdir -p -- "$1" && chmod 700 -- "$1" && cat > "$2" && sha256sum -- "$2"';
const PROGRESS_EVERY_MS = 250;

/**
 * Source → destination over the kept-warm SSH connection: the archive is streamed into
 * a temporary file on an exec channel, hashed there, compared with the hash taken at
 * checkpoint time, and only then given its final name.
 */
export const transfer: Step = async (ctx) => {
  const { rec } = ctx;
  const archive = rec.archive;
  if (!archive) throw new StepError(`migration ${rec.id} has no archive to transfer`, { code: 'NO_ARCHIVE', permanent: true });
  const dest = ctx.remote(rec.to);
  const remotePath = join(dest.host.workDir, archive.file);
  const already = await dest.runner.run(['sha256sum', '--', remotePath]);
  if (already.code === 0 && already.stdout.startsWith(archive.sha256)) {
    return { result: { alreadyDone: true, bytes: 0 } };
  }
  const part = `${remotePath}.part`;
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
  const input = createReadStream(join(ctx.self.workDir, archive.file)).pipe(counter);
  const argv = ['sh', '-c', RECEIVE, 'ferry-receive', dest.host.workDir, part];
  const res = await dest.runner.run(argv, { stdin: input, timeoutMs: ctx.config.timeouts.step.transfer });
  if (res.code !== 0) throw new CommandError(dest.runner.where, argv, res.code, res.stderr);
  const got = res.stdout.trim().split(/\s+/)[0];
  if (got !== archive.sha256) {
    await dest.runner.run(['rm', '-f', '--', part]);
    throw new StepError(`archive checksum mismatch on host ${rec.to}: expected ${archive.sha256}, got ${got || 'nothing'} (corrupted in transit); will send it again`, { code: 'CHECKSUM_MISMATCH' });
  }
  const mv = ['mv', '-f', '--', part, remotePath];
  const moved = await dest.runner.run(mv);
  if (moved.code !== 0) throw new CommandError(dest.runner.where, mv, moved.code, moved.stderr);
  const ms = Date.now() - started;
  await ctx.progress({ percent: 100, bytes: sent, totalBytes: archive.bytes });
  return {
    result: { bytes: sent, ms, mbPerS: ms > 0 ? Math.round((sent / 1e6 / (ms / 1000)) * 10) / 10 : null },
    patch: { bytesTransferred: sent },
  };
};
