import { FerryError } from './FerryError';

/** A request (CLI arguments, plan file, job payload) is not acceptable as given. */
export class ValidationError extends FerryError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'INVALID_INPUT', permanent: true, cause });
    this.name = 'ValidationError';
    Object.setPrototypeOf(this, ValidationError.prototype);
  }
}
