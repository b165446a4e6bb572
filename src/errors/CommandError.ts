import { FerryError } from './FerryError';

/**
 * A command (podman, sha256sum, ...) exited non-zero. Judged by exit code only: podman
 * writes progress to stderr, so stderr is kept for the message but never decides success.
 */
export class CommandError extends FerryError {
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly where: string;

  constructor(where: string, argv: readonly string[], exitCode: number | null, stderr: string, opts: { permanent?: boolean } = {}) {
    const detail = lastLines(stderr, 4);
    super(`${where}: \`${argv.join(' ')}\` exited with ${exitCode ?? 'a signal'}${detail ? `: ${detail}` : ''}`, {
      code: 'COMMAND_FAILED',
      permanent: opts.permanent ?? false,
    });
    this.name = 'CommandError';
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.where = where;
    Object.setPrototypeOf(this, CommandError.prototype);
  }
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').filter(Boolean).slice(-n).join(' | ');
}
