import { FerryError } from './FerryError';

/**
 * A newer attempt of the same step (or a later step, or the end of the migration) has
 * taken over the migration record: this attempt may no longer change it or touch a
 * container. Raised by every fenced record update and fence check.
 */
export class SupersededError extends FerryError {
  constructor(message: string) {
    super(message, { code: 'SUPERSEDED', permanent: true });
    this.name = 'SupersededError';
    Object.setPrototypeOf(this, SupersededError.prototype);
  }
}
