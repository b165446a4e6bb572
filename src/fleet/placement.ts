import type { PodFact } from '../podman/parse';
import type { ContainerFact } from './hostFacts';

/** Labels an operator puts on containers to steer drains. */
export const LABEL_MIGRATE = 'ferry.migrate'; // "false": never move it; it stays where it is
export const LABEL_ON_DRAIN = 'ferry.on-drain'; // "stop": stop it instead of moving it
export const LABEL_GROUP = 'ferry.group'; // replicas with the same group never share a host

export interface Candidate {
  name: string;
  containers: number;
  memoryUsedMb: number;
  /** 0 means no limit of that kind. */
  capacity: { containers: number; memoryMb: number };
  groups: Record<string, number>;
}

export interface DrainPlan {
  moves: { container: string; to: string; memoryMb: number }[];
  stop: string[];
  skip: { container: string; reason: string }[];
  unplaceable: { container: string; reason: string }[];
}

function fits(c: Candidate, memoryMb: number, group: string | undefined): string | null {
  if (c.capacity.containers > 0 && c.containers + 1 > c.capacity.containers) return `${c.name} is full (${c.containers}/${c.capacity.containers} containers)`;
  if (c.capacity.memoryMb > 0 && c.memoryUsedMb + memoryMb > c.capacity.memoryMb) return `${c.name} lacks memory (${c.memoryUsedMb}+${memoryMb} > ${c.capacity.memoryMb} MB)`;
  if (group && (c.groups[group] ?? 0) > 0) return `${c.name} already runs a replica of group ${group}`;
  return null;
}

/** The pod a container belongs to, by its id or name, and whether it is that pod's infra container. */
function podIndex(pods: readonly PodFact[]): Map<string, { pod: PodFact; infra: boolean }> {
  const index = new Map<string, { pod: PodFact; infra: boolean }>();
  for (const pod of pods) {
    for (const m of pod.members) {
      const entry = { pod, infra: m.id === pod.infraId };
      if (m.id) index.set(m.id, entry);
      if (m.name) index.set(m.name, entry);
    }
  }
  return index;
}

/**
 * Chooses a destination for every running container of a drained host: largest first,
 * each onto the least loaded host that has room and holds no replica of its group.
 * Pod members stay (all of them, the infra container too): Ferry moves one container at a
 * time, and a pod split over hosts, or a member restored without its pod, does not work.
 * Pure: the caller gathers the facts and decides what to do with an unplaceable one.
 */
export function planDrain(containers: ContainerFact[], candidates: Candidate[], pods: readonly PodFact[] = []): DrainPlan {
  const plan: DrainPlan = { moves: [], stop: [], skip: [], unplaceable: [] };
  const hosts = candidates.map((c) => ({ ...c, groups: { ...c.groups } }));
  const inPod = podIndex(pods);
  const movable: ContainerFact[] = [];
  for (const c of containers.filter((x) => x.state === 'running')) {
    const migrate = (c.labels[LABEL_MIGRATE] ?? '').toLowerCase();
    const pod = inPod.get(c.id) ?? inPod.get(c.name);
    if (migrate === 'false' || migrate === 'no') plan.skip.push({ container: c.name, reason: `label ${LABEL_MIGRATE}=${c.labels[LABEL_MIGRATE]}: left running where it is` });
    // Stopping the infra container would stop the whole pod: it is kept whatever its labels say.
    else if (pod?.infra) plan.skip.push({ container: c.name, reason: `infra container of pod ${pod.pod.name} (Ferry cannot move pods yet)` });
    else if ((c.labels[LABEL_ON_DRAIN] ?? '').toLowerCase() === 'stop') plan.stop.push(c.name);
    else if (pod) plan.skip.push({ container: c.name, reason: `pod member (Ferry cannot move pods yet): pod ${pod.pod.name}` });
    else movable.push(c);
  }
  movable.sort((x, y) => y.memoryMb - x.memoryMb || x.name.localeCompare(y.name));
  for (const c of movable) {
    const group = c.labels[LABEL_GROUP];
    const reasons: string[] = [];
    const ok = hosts.filter((h) => {
      const why = fits(h, c.memoryMb, group);
      if (why) reasons.push(why);
      return !why;
    });
    if (ok.length === 0) {
      plan.unplaceable.push({ container: c.name, reason: reasons.join('; ') || 'no destination hosts allowed' });
      continue;
    }
    const load = (h: Candidate) => (h.capacity.containers > 0 ? h.containers / h.capacity.containers : h.containers / 1000);
    ok.sort((x, y) => load(x) - load(y) || x.containers - y.containers || x.name.localeCompare(y.name));
    const dest = ok[0];
    dest.containers++;
    dest.memoryUsedMb += c.memoryMb;
    if (group) dest.groups[group] = (dest.groups[group] ?? 0) + 1;
    plan.moves.push({ container: c.name, to: dest.name, memoryMb: c.memoryMb });
  }
  return plan;
}
