import { PassThrough, Writable } from 'node:stream';
import { StepError } from '../errors/StepError';
import type { CommandRunner } from './runner';

/** Where the lock files live on every host (a tmpfs: nothing survives a reboot, nor should it). */
export const HOST_LOCK_DIR = '/run/lock/ferry';

// Constant script; the lock file and the wait travel as positional parameters. flock holds
// the lock for as long as the inner shell runs, and the inner shell runs until its standard
// input ends: released by us, or by the kernel and sshd when this process or its SSH
// connection dies. A process that is paused (SIGSTOP, a frozen VM) keeps it, as it should.
const HOLD = 'mkdir -p -m 700 -- "$1" && exec flock -w "$2" "$3" sh -c \'echo locked; read -r _ || true\'';

export interface HostLock {
  /** Safe to call twice. */
  release(): Promise<void>;
}

/**
 * One step attempt at a time touches a container on a host, whichever worker process runs
 * it: two workers for one host, or an attempt that lost its job lock but still runs, wait
 * here for each other instead of acting side by side. The record's fencing token then
 * decides which of them may act at all; this closes the gap between that check and the
 * podman command it guards.
 */
export async function lockContainerOnHost(runner: CommandRunner, host: string, container: string, waitMs: number, signal?: AbortSignal): Promise<HostLock> {
  const file = `${HOST_LOCK_DIR}/${host}.${container.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`;
  const stdin = new PassThrough();
  let seen = '';
  let onLocked: () => void = () => undefined;
  const locked = new Promise<void>((resolve) => (onLocked = resolve));
  const stdout = new Writable({
    write(chunk: Buffer, _enc, done) {
      seen += chunk.toString();
      if (/^locked$/m.test(seen)) onLocked();
      done();
    },
  });
  // `signal` stops the wait, never the hold: an aborted attempt's commands are still dying
  // (SIGTERM, then SIGKILL after a grace), and the lock must outlast them. Once held, only
  // release() ends it, or the death of this process or its SSH connection.
  const waiting = new AbortController();
  const stopWaiting = (): void => waiting.abort(signal?.reason);
  if (signal?.aborted) stopWaiting();
  else signal?.addEventListener('abort', stopWaiting, { once: true });
  const holding = runner.run(['sh', '-c', HOLD, 'ferry-lock', HOST_LOCK_DIR, String(Math.max(1, Math.ceil(waitMs / 1000))), file], { stdin, stdout, signal: waiting.signal });
  const ended = holding.then(
    (res) => res,
    (e: unknown) => {
      throw e;
    },
  );
  ended.catch(() => undefined);
  const first = await Promise.race([locked.then(() => 'locked' as const), ended.then((res) => res)]);
  signal?.removeEventListener('abort', stopWaiting);
  if (first === 'locked' && waiting.signal.aborted) {
    // Aborted in the instant it was granted: the holder is being killed, so it is not held.
    await ended.catch(() => undefined);
    throw new StepError(`the attempt was stopped while it waited for container "${container}" on ${runner.where}`, { code: 'HOST_LOCK_ABORTED' });
  }
  if (first !== 'locked') {
    const busy = first.code === 1;
    throw new StepError(
      busy
        ? `container "${container}" on ${runner.where} is held by another attempt (lock ${file}) for more than ${waitMs} ms; retrying`
        : `cannot lock container "${container}" on ${runner.where} (exit ${first.code}): ${first.stderr.trim().slice(0, 200)}`,
      { code: busy ? 'HOST_LOCK_BUSY' : 'HOST_LOCK_FAILED' },
    );
  }
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= (async () => {
        stdin.end();
        await ended.catch(() => undefined);
      })();
      return released;
    },
  };
}
