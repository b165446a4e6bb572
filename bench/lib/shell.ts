import { ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { hostInfo } from '../../test/support/bed';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command and collects its output, without blocking the event loop (pollers keep running). */
export function run(argv: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: opts.env ?? process.env }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    // A hung command (e.g. an sshd stalled by other users of the bed) must not stall the whole bench.
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (opts.input && child.stdin) {
      child.stdin.on('error', () => {
        // A command that reads no input may exit first: its exit code says what happened.
      });
      child.stdin.end(opts.input);
    }
  });
}

export async function must(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** argv run inside a bed host (its mount and network namespace), as a user logged in there. */
export function inHost(host: string, argv: string[]): string[] {
  const h = hostInfo(host);
  return ['nsenter', `--mount=${h.mountns}`, `--net=${h.netns}`, ...argv];
}

export function inHostShell(host: string, script: string): string[] {
  return inHost(host, ['sh', '-c', script]);
}
