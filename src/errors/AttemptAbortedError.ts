import { FerryError } from './FerryError';

/**
 * A step attempt was stopped: its time limit ran out, its job lock was lost, or a newer
 * attempt of the same step took over (fencing). What it was doing is killed and whatever it
 * produced is discarded; the step is retried (or rolled back) by the attempt that is current.
 */
export class AttemptAbortedError extends FerryError {
  constructor(message: string, opts: { code?: string; cause?: unknown } = {}) {
    super(message, { code: opts.code ?? 'ATTEMPT_ABORTED', permanent: false, cause: opts.cause });
    this.name = 'AttemptAbortedError';
    Object.setPrototypeOf(this, AttemptAbortedError.prototype);
  }
}
