import { FerryClient, MigrateRequest } from '../../src/client';
import { loadConfig } from '../../src/config/load';
import type { MigrationRecord } from '../../src/engine/model';
import { TERMINAL_STATES } from '../../src/engine/model';
import { makeConfig, startWorkers, stopWorkers, TestConfig, WorkerProc } from '../../test/support/bed';
import { sleep } from './clock';

/** Ferry as a user runs it: real `ferry worker` processes in the hosts, a library client here. */
export interface FerryRig {
  cfg: TestConfig;
  client: FerryClient;
  workers: WorkerProc[];
  close(): Promise<void>;
}

export async function startFerry(hosts: string[], opts: { compression?: 'none' | 'gzip' | 'zstd'; concurrency?: number; archive?: Record<string, unknown> } = {}): Promise<FerryRig> {
  const cfg = makeConfig({
    top: {
      // 'info': the harness waits for the worker's "worker ready" line.
      log: { level: 'info' },
      verify: { timeoutMs: 30_000, intervalMs: 250 },
      worker: { concurrency: opts.concurrency ?? 4, lockDurationMs: 30_000, stalledIntervalMs: 15_000 },
      checkpoint: { compression: opts.compression ?? 'zstd' },
      ...(opts.archive ? { archive: opts.archive } : {}),
    },
  });
  const workers = await startWorkers(hosts, cfg);
  const client = new FerryClient(loadConfig({ file: cfg.file, env: {} }));
  return {
    cfg,
    client,
    workers,
    async close() {
      await client.close();
      await stopWorkers(workers);
    },
  };
}

export async function waitDone(client: FerryClient, id: string, timeoutMs = 300_000): Promise<MigrationRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rec = await client.get(id);
    if (rec && TERMINAL_STATES.has(rec.state)) return rec;
    if (Date.now() > deadline) throw new Error(`migration ${id} not finished after ${timeoutMs} ms (state ${rec?.state})`);
    await sleep(20);
  }
}

export async function migrateAndWait(client: FerryClient, req: MigrateRequest): Promise<MigrationRecord> {
  const rec = await client.migrate(req);
  const done = await waitDone(client, rec.id);
  if (done.state !== 'succeeded') throw new Error(`migration of ${req.container} ended ${done.state}: ${done.error ?? ''}`);
  return done;
}
