import { FerryError } from './FerryError';

/** A migration step found the world in a state it must not act on. */
export class StepError extends FerryError {
  constructor(message: string, opts: { code?: string; permanent?: boolean; cause?: unknown } = {}) {
    super(message, { code: opts.code ?? 'STEP_FAILED', permanent: opts.permanent ?? false, cause: opts.cause });
    this.name = 'StepError';
    Object.setPrototypeOf(this, StepError.prototype);
  }
}
