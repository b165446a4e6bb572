import { strict as assert } from 'node:assert';
import type { FerryClient } from '../../src/client';
import type { HealthProbe, MigrationRecord, MigrationState, StepName } from '../../src/engine/model';
import { startWorker, TestConfig, uid, variant, WorkerProc } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, invariant, killWorker, podmanWrapper, recordRun, RUNS, runBigCounter, sleep, Watch } from '../support/faults';

export type Role = 'src' | 'dst';
type WrapperSpec = Parameters<typeof podmanWrapper>[0];

/** What a fault run hands its injector: the live migration and ways to hurt it. */
export interface Ctx {
  cfg: TestConfig & { workDir: string };
  client: FerryClient;
  watch: Watch;
  name: string;
  id: string;
  host: Record<Role, string>;
  workers: Record<Role, WorkerProc>;
  /** SIGKILL one worker (and its children with `tree`), then start it again; says if the kill hit `step` while it ran. */
  killAndRestart(role: Role, tree: boolean, step: StepName): Promise<string>;
  restart(role: Role): Promise<void>;
  /** Runs at the end even when the run fails: undo what the fault broke. */
  undo(fn: () => unknown): void;
  rec(): Promise<MigrationRecord>;
  /** Set by a fault that puts another container of the same name on a host. */
  impostor?: { host: string; id: string };
}

export interface Scenario {
  fault: string;
  where: string;
  /** Random data in the container, in MB, so checkpoint/transfer/restore take a while. */
  mb?: number;
  probe?: HealthProbe;
  /** The podman each host's OWN worker runs (a wrapper that slows or breaks one sub-command). */
  podman?: Partial<Record<Role, WrapperSpec>>;
  top?: Record<string, unknown>;
  /** Changes the config before workers start (another Redis, a private sshd...). */
  prepare?(cfg: TestConfig & { workDir: string }, undo: (fn: () => unknown) => void): Promise<TestConfig & { workDir: string }>;
  /** Runs before the migration is requested; may return another container of the same name. */
  beforeMigrate?(name: string, host: Record<Role, string>): { host: string; id: string } | undefined;
  /** Injects the fault into the running migration; returns a note for the results table. */
  inject(ctx: Ctx): Promise<string | undefined>;
  /** Final states that tell the truth for this fault. */
  expect: MigrationState[];
  /** needs-attention: the host that must keep the archive, and what a person then does. */
  keptArchive?: Role;
  operator?(ctx: Ctx, rec: MigrationRecord): Promise<string | undefined>;
  /** The record must say this (e.g. why it failed). */
  message?: RegExp;
  /** The destination's disk may be too full for podman to delete a copy that never ran: allowed if the record warns. */
  strandedOnDestination?: boolean;
  /** What this fault can leave behind that invariant() does not look for; runs before any undo, each string is a problem. */
  check?(ctx: Ctx, rec: MigrationRecord): Promise<string[]>;
}

const SRC = 'a';
const DST = 'c';

/** One fault run from start to the invariant check; records the run for docs/reliability.md. */
export async function runScenario(s: Scenario): Promise<void> {
  const started = Date.now();
  const name = `flt-${uid()}`;
  const undos: (() => unknown)[] = [];
  const undo = (fn: () => unknown) => undos.push(fn);
  let base = faultConfig({ top: { retry: { backoffMs: 200, attempts: { rollback: 4, cleanup: 4 } }, ...(s.top ?? {}) } });
  const host: Record<Role, string> = { src: SRC, dst: DST };
  const workers = {} as Record<Role, WorkerProc>;
  let client: FerryClient | undefined;
  let note = '';
  try {
    if (s.prepare) base = await s.prepare(base, undo);
    const cfg = base;
    const own: Record<Role, TestConfig> = { src: cfg, dst: cfg };
    for (const role of ['src', 'dst'] as Role[]) {
      const w = s.podman?.[role];
      if (w) own[role] = variant(cfg, { [host[role]]: { podman: [podmanWrapper(w)] } });
    }
    const start = async (role: Role) => {
      workers[role] = await startWorker(host[role], own[role]);
    };
    await Promise.all([start('src'), start('dst')]);
    runBigCounter(SRC, name, s.mb ?? 0);
    const before = await counterAt(SRC, name, 3);
    const impostor = s.beforeMigrate?.(name, host);
    client = clientFor(cfg);
    const c = client;
    const rec0 = await c.migrate({ container: name, from: SRC, to: DST, probe: s.probe ?? { kind: 'exec', argv: ['cat', '/tmp/count'] } });
    const watch = new Watch(c, rec0.id);
    const ctx: Ctx = {
      cfg,
      client: c,
      watch,
      name,
      id: rec0.id,
      host,
      workers,
      undo,
      impostor,
      rec: async () => {
        const r = await c.get(rec0.id);
        if (!r) throw new Error('record vanished');
        return r;
      },
      restart: start,
      async killAndRestart(role, tree, step) {
        await killWorker(workers[role], tree);
        const r = await ctx.rec();
        const open = r.history.some((h) => h.step === step && h.host === host[role] && h.finishedAt === undefined);
        await start(role);
        return open ? `kill landed inside ${step}` : `kill landed after ${step} finished`;
      },
    };
    note = (await s.inject(ctx)) ?? '';
    const rec = await watch.final;
    if (s.operator) note = [note, (await s.operator(ctx, rec)) ?? ''].filter(Boolean).join('; ');
    // A copy half-removed by a step still running must have settled before we look.
    await sleep(300);
    const v = invariant({ rec, name, before, workDir: cfg.workDir, keptArchive: s.keptArchive ? host[s.keptArchive] : undefined, impostor: ctx.impostor, strandedOn: s.strandedOnDestination ? host.dst : undefined });
    const problems = [...v.problems];
    if (!s.expect.includes(rec.state)) problems.push(`final state ${rec.state}, expected ${s.expect.join(' or ')}: ${rec.error ?? ''}`);
    if (s.message && !s.message.test(rec.error ?? '')) problems.push(`record error does not say ${s.message}: ${rec.error ?? '(none)'}`);
    if (s.check) problems.push(...(await s.check(ctx, rec)));
    recordRun({ fault: s.fault, where: s.where, ok: problems.length === 0, outcome: v.outcome, note: [note, ...problems].filter(Boolean).join('; '), ms: Date.now() - started });
    assert.deepEqual(problems, [], `${s.fault} / ${s.where}: ${v.outcome}\n${rec.error ?? ''}`);
  } catch (e: unknown) {
    if (!(e instanceof assert.AssertionError)) {
      recordRun({ fault: s.fault, where: s.where, ok: false, outcome: 'test error', note: `${note} ${e instanceof Error ? e.message : String(e)}`.trim(), ms: Date.now() - started });
    }
    throw e;
  } finally {
    for (const u of undos.reverse()) {
      try {
        await u();
      } catch {
        // Best effort: every undo runs.
      }
    }
    await Promise.all(Object.values(workers).map((w) => w.stop('SIGKILL')));
    await client?.close();
    cleanHosts([name], base.workDir);
  }
}

/** Registers a scenario as `RUNS` mocha tests. */
export function faultTests(list: Scenario[], runs = RUNS): void {
  for (const s of list) {
    for (let i = 1; i <= runs; i++) {
      it(`${s.fault} — ${s.where}${runs > 1 ? ` (run ${i}/${runs})` : ''}`, () => runScenario(s));
    }
  }
}
