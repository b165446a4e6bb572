import { spawn } from 'node:child_process';
import { AttemptAbortedError } from '../errors/AttemptAbortedError';
import { CommandResult, CommandRunner, KILL_GRACE_MS, RunOptions } from './runner';

const MAX_CAPTURE = 8 * 1024 * 1024;

/** Runs commands on this machine without a shell: argv goes straight to execve. */
export class LocalRunner implements CommandRunner {
  readonly where: string;

  constructor(where = 'local host') {
    this.where = where;
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const signal = opts.signal;
      if (signal?.aborted) {
        reject(new AttemptAbortedError(`not running \`${argv[0]}\` on ${this.where}: the attempt was stopped`, { cause: signal.reason }));
        return;
      }
      const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timer: NodeJS.Timeout | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      let timedOut = false;
      let aborted = false;
      const onAbort = (): void => {
        aborted = true;
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (): void => {
        if (timer) clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        signal?.removeEventListener('abort', onAbort);
      };
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs);
      }
      if (opts.stdout) child.stdout.pipe(opts.stdout, { end: false });
      else
        child.stdout.on('data', (d: Buffer) => {
          if (stdout.length < MAX_CAPTURE) stdout += d.toString('utf8');
        });
      child.stderr.on('data', (d: Buffer) => {
        if (stderr.length < MAX_CAPTURE) stderr += d.toString('utf8');
      });
      child.stdin.on('error', () => {
        // The command may exit without reading all its input (e.g. it failed early):
        // its exit code tells what happened, a broken pipe here adds nothing.
      });
      if (typeof opts.stdin === 'string') child.stdin.end(opts.stdin);
      else if (opts.stdin) opts.stdin.pipe(child.stdin);
      else child.stdin.end();
      child.on('error', (err) => {
        settle();
        reject(err);
      });
      child.on('close', (code) => {
        settle();
        if (aborted) {
          reject(new AttemptAbortedError(`\`${argv[0]}\` on ${this.where} was stopped: the attempt was stopped`, { cause: signal?.reason }));
          return;
        }
        if (timedOut) stderr += `\n(killed after ${opts.timeoutMs} ms time limit)`;
        resolve({ code: timedOut ? null : code, stdout, stderr });
      });
    });
  }
}
