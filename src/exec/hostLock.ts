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
export async function lockContainerOnHost(runner: CommandRunner, host: string, container: string, waitMs: number): Promise<HostLock> {
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
  const holding = runner.run(['sh', '-c', HOLD, 'ferry-lock', HOST_LOCK_DIR, String(Math.max(1, Math.ceil(waitMs / 1000))), file], { stdin, stdout });
  const ended = holding.then(
    (res) => res,
    (e: unknown) => {
      throw e;
    },
  );
  ended.catch(() => undefined);
  const first = await Promise.race([locked.then(() => 'locked' as const), ended.then((res) => res)]);
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
