/**
 * Base class of every error Ferry raises on purpose. `code` is stable for scripts;
 * `permanent` tells the step runner that retrying cannot help (bad input, auth failure),
 * so the job fails at once instead of burning its retries.
 */
export class FerryError extends Error {
  readonly code: string;
  readonly permanent: boolean;

  constructor(message: string, opts: { code?: string; permanent?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FerryError';
    this.code = opts.code ?? 'FERRY_ERROR';
    this.permanent = opts.permanent ?? false;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
