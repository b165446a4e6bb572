export { FerryError } from './FerryError';
export { ConfigError } from './ConfigError';
export { ValidationError } from './ValidationError';
export { CommandError } from './CommandError';
export { SshError } from './SshError';
export type { SshFailure } from './SshError';
export { StepError } from './StepError';
export { ArchiveCryptoError } from './ArchiveCryptoError';
export { coerceError, isPermanent } from './coerceError';
