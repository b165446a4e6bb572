/**
 * Every `catch (e: unknown)` goes through here, so code after a catch always holds an
 * Error with a message, and whatever was thrown stays reachable as `cause`.
 */
export function coerceError(e: unknown): Error {
  if (e instanceof Error) return e;
  if (typeof e === 'string') return new Error(e);
  let text: string;
  try {
    text = JSON.stringify(e);
  } catch {
    text = String(e);
  }
  return new Error(`non-error thrown: ${text}`, { cause: e });
}

/** True when retrying cannot help: the error says so itself. */
export function isPermanent(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { permanent?: unknown }).permanent === true;
}
