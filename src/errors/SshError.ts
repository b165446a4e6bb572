import { FerryError } from './FerryError';

export type SshFailure = 'unreachable' | 'auth' | 'host-key-unknown' | 'host-key-changed' | 'channel';

/** Talking to a host over SSH failed; `failure` says how, so callers can decide to retry. */
export class SshError extends FerryError {
  readonly host: string;
  readonly failure: SshFailure;

  constructor(host: string, failure: SshFailure, message: string, cause?: unknown) {
    // Unreachable hosts and broken channels may come back; a refused key will not.
    const permanent = failure === 'auth' || failure === 'host-key-unknown' || failure === 'host-key-changed';
    super(message, { code: `SSH_${failure.toUpperCase().replace(/-/g, '_')}`, permanent, cause });
    this.name = 'SshError';
    this.host = host;
    this.failure = failure;
    Object.setPrototypeOf(this, SshError.prototype);
  }
}
