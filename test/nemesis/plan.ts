import { FORWARD_STEPS, StepName } from '../../src/engine/steps';
/**
 * The nemesis's choices for one run, drawn from its seed only: the same seed always gives the
 * same container, hosts, moment and faults, so a failing run is re-run with
 * `FERRY_NEMESIS_SEED=<seed> FERRY_NEMESIS_RUNS=1` (timing noise aside).
 */

/** mulberry32: a tiny, well-mixed 32-bit PRNG; no dependency, identical on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export const BED_HOSTS = ['a', 'b', 'c'] as const;
export type BedHost = (typeof BED_HOSTS)[number];
export type Role = 'src' | 'dst';

/** Short job locks so a paused worker loses its lock within seconds and runs stay short. */
export const LOCK_MS = 3000;
export const STALLED_MS = 1500;

export const MOMENT_STEPS = FORWARD_STEPS;
export type MomentStep = StepName;

export interface Moment {
  event: 'step-started' | 'progress';
  step: MomentStep;
  delayMs: number;
}

export type Fault =
  /** SIGSTOP of a worker's whole process group past its job lock, then SIGCONT: the zombie. */
  | { kind: 'pause'; role: Role; holdMs: number }
  /** SIGKILL of a worker (node only, or its process group), started again after a while. */
  | { kind: 'kill'; role: Role; tree: boolean; downMs: number }
  /** iptables in the worker's host namespace drops its traffic to and from Redis. */
  | { kind: 'partition-redis'; role: Role; holdMs: number }
  /** iptables in one host's namespace drops the SSH link between source and destination. */
  | { kind: 'partition-hosts'; side: Role; holdMs: number }
  /** The worker runs under libfaketime with its wall clock off by minutes (set when it starts). */
  | { kind: 'skew'; role: Role; offset: string }
  /** SIGKILL of the run's own Redis (appendfsync everysec: the last second of writes is lost), restarted. */
  | { kind: 'redis-crash'; downMs: number }
  /** The same container submitted again, by a unique prefix of its podman ID, to the third host. */
  | { kind: 'double-submit'; idChars: number }
  /** What Bull Board's HTTP API does, through BullMQ's Queue API, on one host's queue. */
  | { kind: 'queue-admin'; role: Role; action: 'pause-resume' | 'remove-waiting' | 'drain'; holdMs: number }
  /** `ferry cancel ID`. */
  | { kind: 'cancel' }
  /** Another worker for the same host, started at the moment and left running. */
  | { kind: 'second-worker'; role: Role }
  /**
   * Workers of another Ferry installation (another prefix in the same Redis) on the source and
   * destination, with the same work dir, started at the moment and left running: they must
   * leave this installation's frozen container alone (finding 12).
   */
  | { kind: 'second-installation' };

export type FaultKind = Fault['kind'];
/**
 * The faults a run draws from by default. A plan is drawn from its seed and this list, so the
 * list is never changed: every seed cited in docs/reliability.md must give the same plan.
 * Faults added later are in ALL_FAULT_KINDS and drawn with FERRY_NEMESIS_FAULTS=all.
 */
export const FAULT_KINDS: readonly FaultKind[] = ['pause', 'kill', 'partition-redis', 'partition-hosts', 'skew', 'redis-crash', 'double-submit', 'queue-admin', 'cancel', 'second-worker'];
export const ALL_FAULT_KINDS: readonly FaultKind[] = [...FAULT_KINDS, 'second-installation'];

export interface Plan {
  seed: number;
  /** MB of random data in the counter (0: the small busybox counter). */
  mb: number;
  src: BedHost;
  dst: BedHost;
  /** The host that is neither (a double submission goes there). */
  third: BedHost;
  moment: Moment;
  /**
   * How memory moves (`ferry migrate --memory-copy`), for every run of a campaign alike
   * (FERRY_NEMESIS_MEMORY_COPY): not drawn from the seed, so a seed's plan is the same with or
   * without it. Undefined: the configuration's default, plain.
   */
  memoryCopy?: 'post-copy';
  /**
   * timeouts.frozenMs for the run (undefined: Ferry's default). A short one makes the source's
   * take-over of a frozen container race the steps still going on.
   */
  frozenMs?: number;
  /** Each fault is injected this long after the moment (they then run side by side). */
  faults: { fault: Fault; afterMs: number }[];
}

function fault(rng: Rng, kind: FaultKind): Fault {
  const role = (): Role => rng.pick(['src', 'dst'] as const);
  switch (kind) {
    case 'pause':
      return { kind, role: role(), holdMs: LOCK_MS + rng.int(500, 6000) };
    case 'kill':
      // Mostly a restart; sometimes an outage long enough for deadlines to pass.
      return { kind, role: role(), tree: rng.chance(0.5), downMs: rng.chance(0.7) ? rng.int(0, 4000) : rng.int(5000, 20_000) };
    case 'partition-redis':
      return { kind, role: role(), holdMs: rng.int(1000, 12_000) };
    case 'partition-hosts':
      return { kind, side: role(), holdMs: rng.int(1000, 12_000) };
    case 'skew':
      return { kind, role: role(), offset: rng.pick(['+5m', '-5m', '+2m', '-2m']) };
    case 'redis-crash':
      return { kind, downMs: rng.int(0, 3000) };
    case 'double-submit':
      return { kind, idChars: rng.int(6, 16) };
    case 'queue-admin':
      return { kind, role: role(), action: rng.pick(['pause-resume', 'remove-waiting', 'drain'] as const), holdMs: rng.int(500, 8000) };
    case 'cancel':
      return { kind };
    case 'second-worker':
      return { kind, role: role() };
    case 'second-installation':
      return { kind };
  }
}

/** A run's plan, from its seed alone (`kinds` narrows the fault pool, e.g. FERRY_NEMESIS_FAULTS=pause,kill). */
export function makePlan(seed: number, kinds: readonly FaultKind[] = FAULT_KINDS, memoryCopy?: 'post-copy'): Plan {
  const rng = new Rng(seed);
  const mb = rng.chance(0.6) ? 0 : rng.pick([16, 32, 48]);
  const src = rng.pick(BED_HOSTS);
  const dst = rng.pick(BED_HOSTS.filter((h) => h !== src));
  const third = BED_HOSTS.find((h) => h !== src && h !== dst) as BedHost;
  const moment: Moment = { event: rng.pick(['step-started', 'progress'] as const), step: rng.pick(MOMENT_STEPS), delayMs: Math.floor(rng.float() ** 2 * 2000) };
  const n = rng.int(1, 3);
  const chosen: FaultKind[] = [];
  while (chosen.length < n && chosen.length < kinds.length) {
    const k = rng.pick(kinds);
    if (!chosen.includes(k)) chosen.push(k);
  }
  const faults = chosen.map((k, i) => ({ fault: fault(rng, k), afterMs: i === 0 ? 0 : rng.int(0, 3000) }));
  const frozenMs = rng.pick([undefined, undefined, 4000, 8000, 15_000]);
  return { seed, mb, src, dst, third, moment, frozenMs, faults, ...(memoryCopy ? { memoryCopy } : {}) };
}

export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'pause':
      return `pause ${f.role} ${f.holdMs}ms`;
    case 'kill':
      return `kill ${f.role}${f.tree ? ' +group' : ''} down ${f.downMs}ms`;
    case 'partition-redis':
      return `partition ${f.role}-redis ${f.holdMs}ms`;
    case 'partition-hosts':
      return `partition src-dst in ${f.side} ${f.holdMs}ms`;
    case 'skew':
      return `skew ${f.role} ${f.offset}`;
    case 'redis-crash':
      return `redis crash, down ${f.downMs}ms`;
    case 'double-submit':
      return `double submit by ${f.idChars}-char id`;
    case 'queue-admin':
      return `queue ${f.role} ${f.action}${f.action === 'pause-resume' ? ` ${f.holdMs}ms` : ''}`;
    case 'cancel':
      return 'cancel';
    case 'second-worker':
      return `second worker ${f.role}`;
    case 'second-installation':
      return 'second installation src+dst';
  }
}
