/** Pure parsers of podman's JSON output, unit-tested on recorded real output. */

export interface PortBinding {
  containerPort: number;
  protocol: string;
  hostIp: string;
  hostPort: number;
}

export interface ContainerInfo {
  id: string;
  name: string;
  status: string;
  running: boolean;
  checkpointed: boolean;
  image: string;
  imageId: string;
  labels: Record<string, string>;
  ports: PortBinding[];
  memoryLimit: number;
  /** podman's per-container folder (checkpoint images and rootfs-diff.tar live there). */
  staticDir: string;
  /** The OCI runtime the container was created with ("runc", "crun"); '' when podman does not say. */
  runtime: string;
  /** What the container mounts besides its image: bind mounts, volumes, tmpfs. */
  mounts: MountInfo[];
  /** The pod's id, '' when the container is in none. */
  pod: string;
  /** The pod's name: container inspect has only its id, so Podman.inspect asks for it; '' when unknown. */
  podName: string;
  /** The pod's infra container (the one holding the pod's namespaces). */
  infra: boolean;
  /** HostConfig.NetworkMode: "bridge", "host", "none", "slirp4netns", "container:<id>", ... */
  networkMode: string;
  /** Containers this one cannot run without (a pod member's infra, `--requires`, a shared namespace). */
  dependencies: string[];
  /** Its IPv4 addresses on its networks (none with --network host or none). */
  addresses: string[];
  /** The podman networks it is attached to, by name (none with --network host or none). */
  networks: string[];
}

export interface MountInfo {
  /** "bind", "volume", "tmpfs", or whatever else podman reports ("image", "devpts"). */
  type: string;
  /** Host path: a bind mount's source, a volume's data folder; '' for tmpfs. */
  source: string;
  destination: string;
  /** The named volume's name; '' for anything else. */
  volumeName: string;
  readOnly: boolean;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

/** A scalar field of podman's JSON as text; anything else (absent, null, an object) is `fallback`. */
export function str(v: unknown, fallback = ''): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return fallback;
}

export function parseInspect(stdout: string): ContainerInfo {
  const parsed: unknown = JSON.parse(stdout);
  const first = obj(Array.isArray(parsed) ? parsed[0] : parsed);
  const state = obj(first.State);
  const config = obj(first.Config);
  const hostConfig = obj(first.HostConfig);
  const ports: PortBinding[] = [];
  const bindings = obj(hostConfig.PortBindings);
  for (const [key, list] of Object.entries(bindings)) {
    const [port, protocol = 'tcp'] = key.split('/');
    if (!Array.isArray(list)) continue;
    for (const b of list) {
      const bo = obj(b);
      const hostPort = Number(bo.HostPort);
      if (Number.isInteger(hostPort) && hostPort > 0) {
        ports.push({ containerPort: Number(port), protocol, hostIp: str(bo.HostIp), hostPort });
      }
    }
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(config.Labels))) labels[k] = String(v);
  return {
    id: str(first.Id),
    name: str(first.Name),
    status: str(state.Status, 'unknown'),
    running: state.Running === true,
    checkpointed: state.Checkpointed === true,
    image: str(first.ImageName ?? config.Image),
    imageId: str(first.Image),
    labels,
    ports,
    memoryLimit: Number(hostConfig.Memory ?? 0) || 0,
    staticDir: str(first.StaticDir),
    runtime: str(first.OCIRuntime),
    mounts: parseMounts(first.Mounts, hostConfig.Tmpfs),
    pod: str(first.Pod),
    podName: '',
    infra: first.IsInfra === true,
    networkMode: str(hostConfig.NetworkMode),
    dependencies: Array.isArray(first.Dependencies) ? first.Dependencies.map((d) => str(d)).filter(Boolean) : [],
    addresses: parseAddresses(obj(first.NetworkSettings)),
    networks: Object.keys(obj(obj(first.NetworkSettings).Networks)),
  };
}

// The default network's address is also at the top level; a named network's only under Networks.
function parseAddresses(settings: Json): string[] {
  const found = [str(settings.IPAddress), ...Object.values(obj(settings.Networks)).map((n) => str(obj(n).IPAddress))];
  return [...new Set(found.filter((a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a)))];
}

// `--tmpfs` mounts appear only in HostConfig.Tmpfs ({destination: options}), `--mount type=tmpfs` in Mounts.
function parseMounts(mounts: unknown, tmpfs: unknown): MountInfo[] {
  const out: MountInfo[] = (Array.isArray(mounts) ? mounts : []).map((m) => {
    const mo = obj(m);
    const type = str(mo.Type);
    return { type, source: str(mo.Source), destination: str(mo.Destination), volumeName: type === 'volume' ? str(mo.Name) : '', readOnly: mo.RW === false };
  });
  for (const [destination, options] of Object.entries(obj(tmpfs))) {
    if (!out.some((m) => m.destination === destination)) out.push({ type: 'tmpfs', source: '', destination, volumeName: '', readOnly: /(^|,)ro(,|$)/.test(str(options)) });
  }
  return out;
}

export interface PodFact {
  id: string;
  name: string;
  infraId: string;
  /** Every container of the pod, its infra container included. */
  members: { id: string; name: string }[];
}

/** `podman pod ps --format json`. */
export function parsePodList(stdout: string): PodFact[] {
  const parsed: unknown = JSON.parse(stdout.trim() || '[]');
  return (Array.isArray(parsed) ? parsed : []).map((p) => {
    const po = obj(p);
    const members = (Array.isArray(po.Containers) ? po.Containers : []).map((c) => {
      const co = obj(c);
      return { id: str(co.Id), name: str(co.Names) };
    });
    return { id: str(po.Id), name: str(po.Name), infraId: str(po.InfraId), members };
  });
}

export interface CriuStats {
  /** Time the container was frozen (CRIU's freezing + frozen time), microseconds. */
  frozenUs?: number;
  memdumpUs?: number;
  memwriteUs?: number;
  pagesWritten?: number;
  restoreUs?: number;
  runtimeDurationUs?: number;
  podmanDurationUs?: number;
  raw: unknown;
}

/** `--print-stats` output: {"podman_checkpoint_duration": n, "container_statistics": [...]} */
export function parseCheckpointStats(stdout: string): CriuStats {
  const text = stdout.trim();
  const start = text.indexOf('{');
  if (start < 0) return { raw: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(start));
  } catch {
    return { raw: text };
  }
  const top = obj(parsed);
  const containers = Array.isArray(top.container_statistics) ? top.container_statistics.map(obj) : [];
  const c = containers[0] ?? {};
  const criu = obj(c.criu_statistics);
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  const frozen = num(criu.frozen_time);
  const freezing = num(criu.freezing_time);
  return {
    frozenUs: frozen !== undefined ? frozen + (freezing ?? 0) : undefined,
    memdumpUs: num(criu.memdump_time),
    memwriteUs: num(criu.memwrite_time),
    pagesWritten: num(criu.pages_written),
    restoreUs: num(criu.restore_time),
    runtimeDurationUs: num(c.runtime_checkpoint_duration) ?? num(c.runtime_restore_duration),
    podmanDurationUs: num(top.podman_checkpoint_duration) ?? num(top.podman_restore_duration),
    raw: parsed,
  };
}

/** Pure: each container's id and the host folders it bind-mounts, from `podman container inspect ID...`. */
export function parseBindSources(stdout: string): { id: string; sources: string[] }[] {
  const parsed: unknown = JSON.parse(stdout);
  return (Array.isArray(parsed) ? parsed : [parsed]).map((c) => {
    const co = obj(c);
    return {
      id: str(co.Id),
      sources: parseMounts(co.Mounts, {})
        .filter((m) => m.type === 'bind')
        .map((m) => m.source),
    };
  });
}

/**
 * The id of a container podman still lists but whose storage is gone: what a `podman rm` cut
 * short leaves (seen under the nemesis: its attempt was paused past its job lock and stopped).
 * Every later inspect fails with this; only another removal clears it.
 */
export function halfRemovedId(stderr: string): string | null {
  return /getting container from store "([0-9a-f]{64})": container not known/.exec(stderr)?.[1] ?? null;
}
