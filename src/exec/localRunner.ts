import { spawn } from 'node:child_process';
import { CommandResult, CommandRunner, RunOptions } from './runner';

const MAX_CAPTURE = 8 * 1024 * 1024;

/** Runs commands on this machine without a shell: argv goes straight to execve. */
export class LocalRunner implements CommandRunner {
  readonly where: string;

  constructor(where = 'local host') {
    this.where = where;
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timer: NodeJS.Timeout | undefined;
      let timedOut = false;
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs);
      }
      if (opts.stdout) child.stdout.pipe(opts.stdout, { end: false });
      else child.stdout.on('data', (d: Buffer) => {
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
        if (timer) clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        if (timedOut) stderr += `\n(killed after ${opts.timeoutMs} ms time limit)`;
        resolve({ code: timedOut ? null : code, stdout, stderr });
      });
    });
  }
}
