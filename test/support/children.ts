import type { ChildProcess } from 'node:child_process';

/** SIGTERM to each process this test started (and only those), resolved once all have exited. */
export async function stopChildren(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) {
            resolve();
            return;
          }
          p.once('exit', () => resolve());
          p.kill('SIGTERM');
        }),
    ),
  );
}
