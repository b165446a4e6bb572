import { FerryError } from './FerryError';

/** The configuration file or environment is malformed; names the offending key. */
export class ConfigError extends FerryError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'CONFIG_INVALID', permanent: true, cause });
    this.name = 'ConfigError';
    Object.setPrototypeOf(this, ConfigError.prototype);
  }
}
