import { ValidationError } from './errors';

// Podman's own rule for container names, so anything Ferry accepts podman accepts too,
// and nothing with shell metacharacters, slashes or whitespace ever reaches a command line.
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const HOST_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_NAME = 128;

/**
 * A host path Ferry names in a command, a ledger line or a message holds none of these: a
 * newline would split one path into two (a ledger line is a path to delete).
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it finds
export const CONTROL_CHARS = /[\x00-\x1f\x7f]/;

function describe(value: unknown): string {
  if (typeof value !== 'string') return `a ${value === null ? 'null' : typeof value}`;
  const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value;
  return JSON.stringify(shown);
}

export function checkContainerName(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME || !CONTAINER_NAME.test(value)) {
    throw new ValidationError(`invalid container name ${describe(value)}: use 1-${MAX_NAME} characters from [a-zA-Z0-9_.-], starting with a letter or digit`);
  }
  return value;
}

export function checkHostName(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 63 || !HOST_NAME.test(value)) {
    throw new ValidationError(`invalid host name ${describe(value)}: use 1-63 characters from [a-zA-Z0-9_.-]`);
  }
  return value;
}
