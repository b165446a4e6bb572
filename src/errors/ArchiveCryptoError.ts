import { FerryError } from './FerryError';

/**
 * An archive key is missing or unsafe, or an encrypted archive cannot be decrypted (wrong
 * key, modified, truncated). Retrying reads the same bytes again, so it is permanent.
 */
export class ArchiveCryptoError extends FerryError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ARCHIVE_CRYPTO', permanent: true, cause });
    this.name = 'ArchiveCryptoError';
    Object.setPrototypeOf(this, ArchiveCryptoError.prototype);
  }
}
