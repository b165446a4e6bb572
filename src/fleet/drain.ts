import type { HostConfig } from '../config/hosts';
import type { FerryConfig } from '../config/load';
import { findHost } from '../config/load';
import { CommandError, FerryError, ValidationError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import { checkHostName } from '../names';
import type { HostState } from '../store/hostState';
import type { BatchRunner } from './batchRunner';
import { gatherHostFacts, HostFacts } from './hostFacts';
import type { BatchRecord } from './model';
import { Candidate, DrainPlan, LABEL_GROUP, planDrain } from './placement';
import { parsePodList, PodFact } from '../podman/parse';

export interface DrainOptions {
  host: string;
  /** Allowed destinations; all other hosts when absent. */
  to?: string[];
  maxParallel: number;
  perHost: number;
  scheduleId?: string;
}

export interface DrainDeps {
  config: FerryConfig;
  hosts: HostState;
  runnerFor(host: string): CommandRunner;
}

export interface PreparedDrain {
  host: string;
  plan: DrainPlan;
  destinations: string[];
  excluded: { host: string; reason: string }[];
}

/** Reads every host involved and plans where each container goes. Changes nothing. */
export async function prepareDrain(deps: DrainDeps, opts: DrainOptions): Promise<PreparedDrain> {
  const { config } = deps;
  const host = checkHostName(opts.host);
  if (!findHost(config, host)) throw new ValidationError(`unknown host "${host}": the inventory has ${config.hosts.map((h) => h.name).join(', ')}`);
  const wanted = opts.to ?? config.hosts.map((h) => h.name).filter((h) => h !== host);
  for (const d of wanted) {
    checkHostName(d);
    if (!findHost(config, d)) throw new ValidationError(`unknown destination host "${d}"`);
    if (d === host) throw new ValidationError(`host "${host}" cannot be a destination of its own drain`);
  }
  const excluded: { host: string; reason: string }[] = [];
  const allowed: string[] = [];
  for (const d of wanted) {
    if (await deps.hosts.isCordoned(d)) excluded.push({ host: d, reason: 'cordoned' });
    else allowed.push(d);
  }
  const facts = await Promise.all([host, ...allowed].map((h) => gatherHostFacts(checkedHost(config, h), deps.runnerFor(h))));
  const source = facts[0];
  if (!source.reachable) throw new FerryError(`cannot read host ${host}: ${source.error}`, { code: 'HOST_UNREACHABLE' });
  const candidates: Candidate[] = [];
  for (const f of facts.slice(1)) {
    if (!f.reachable) {
      excluded.push({ host: f.host, reason: `unreachable: ${f.error}` });
      continue;
    }
    candidates.push(candidateFrom(config, f));
  }
  const pods = await podsOn(checkedHost(config, host), deps.runnerFor(host));
  return { host, plan: planDrain(source.containers, candidates, pods), destinations: candidates.map((c) => c.name), excluded };
}

/** The pods of the drained host with their members: a plan that cannot tell them would split them. */
async function podsOn(host: HostConfig, runner: CommandRunner): Promise<PodFact[]> {
  const argv = [...host.podman, 'pod', 'ps', '--format', 'json'];
  const r = await runner.run(argv, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new CommandError(runner.where, argv, r.code, r.stderr);
  return parsePodList(r.stdout);
}

/** The inventory entry of a host prepareDrain already found in the inventory. */
function checkedHost(config: FerryConfig, name: string): HostConfig {
  const h = findHost(config, name);
  if (!h) throw new ValidationError(`unknown host "${name}"`);
  return h;
}

function candidateFrom(config: FerryConfig, f: HostFacts): Candidate {
  const running = f.containers.filter((c) => c.state === 'running');
  const cap = checkedHost(config, f.host).capacity;
  const groups: Record<string, number> = {};
  for (const c of running) {
    const g = c.labels[LABEL_GROUP];
    if (g) groups[g] = (groups[g] ?? 0) + 1;
  }
  return {
    name: f.host,
    containers: running.length,
    memoryUsedMb: running.reduce((s, c) => s + c.memoryMb, 0),
    // No configured memory limit: what the host reports it can still give.
    capacity: { containers: cap.containers, memoryMb: cap.memoryMb > 0 ? cap.memoryMb : Math.max(0, (f.memFreeMb ?? 0) + running.reduce((s, c) => s + c.memoryMb, 0)) },
    groups,
  };
}

/**
 * Runs a prepared drain: refuses before touching anything if some container has no place,
 * else cordons the host, stops the containers labelled to stop, and runs the moves as a batch.
 */
export async function executeDrain(deps: DrainDeps & { batches: BatchRunner; rememberDrain(host: string, batchId: string): Promise<void> }, prepared: PreparedDrain, opts: DrainOptions): Promise<BatchRecord> {
  const { plan, host } = prepared;
  if (plan.unplaceable.length > 0) {
    throw new FerryError(`drain of ${host} refused, nothing was changed: no room for ${plan.unplaceable.map((u) => `${u.container} (${u.reason})`).join(', ')}`, { code: 'NO_CAPACITY', permanent: true });
  }
  await deps.hosts.cordon(host, opts.scheduleId ? `scheduled drain ${opts.scheduleId}` : 'drain');
  const runner = deps.runnerFor(host);
  const podman = checkedHost(deps.config, host).podman;
  for (const name of plan.stop) {
    const argv = [...podman, 'container', 'stop', name];
    const r = await runner.run(argv, { timeoutMs: 120_000 });
    if (r.code !== 0) throw new CommandError(runner.where, argv, r.code, r.stderr);
  }
  const batch = await deps.batches.create({
    kind: 'drain',
    items: plan.moves.map((m) => ({ container: m.container, from: host, to: m.to })),
    maxParallel: opts.maxParallel,
    perHost: opts.perHost,
    drainHost: host,
    stopped: plan.stop,
    skipped: plan.skip,
    scheduleId: opts.scheduleId,
  });
  await deps.rememberDrain(host, batch.id);
  return batch;
}
