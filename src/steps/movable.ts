import { posix } from 'node:path';
import type { FerryConfig } from '../config/load';
import type { ContainerInfo, MountInfo } from '../podman/parse';

/** Container label: mount destinations (inside the container) whose host folders are shared storage. */
export const LABEL_SHARED_MOUNTS = 'ferry.shared-mounts';
/** Container label: mount destinations whose host folders Ferry copies to the destination (steps/copiedMounts.ts). */
export const LABEL_COPY_MOUNTS = 'ferry.copy-mounts';

/** The page that lists every refusal and its way out. */
export const WHAT_MOVES_DOC = 'docs/what-moves.md';

/** Something about a container that a checkpoint and restore on another host cannot carry safely. */
export interface MovabilityProblem {
  /** Stable, for scripts and the StepError's code. */
  code: 'BIND_MOUNT_NOT_SHARED' | 'MOUNT_UNSUPPORTED' | 'POD_MEMBER' | 'POD_INFRA' | 'SHARED_NAMESPACE' | 'TCP_WITHOUT_ADDRESS';
  /** What is wrong and why, then what the user can do instead. */
  message: string;
}

type CheckpointSettings = Pick<FerryConfig['checkpoint'], 'tcpEstablished' | 'keepAddress' | 'sharedMounts' | 'copyMounts'>;

function clean(path: string): string {
  const p = posix.normalize(path);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** The mount destinations a label of the container lists. */
function labelled(labels: Record<string, string>, label: string): Set<string> {
  const raw = labels[label] ?? '';
  return new Set(
    raw
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean)
      .map(clean),
  );
}

function underFolder(source: string, folders: readonly string[]): boolean {
  const s = clean(source);
  return folders.map(clean).some((f) => s === f || s.startsWith(f === '/' ? '/' : `${f}/`));
}

/**
 * The bind mounts declared shared storage, by the container's label (by destination) or by
 * the config (by host folder). Preflight checks that the destination host sees the same
 * content in each before anything is frozen.
 */
export function declaredSharedMounts(info: ContainerInfo, config: { checkpoint: CheckpointSettings }, labels: Record<string, string> = info.labels): MountInfo[] {
  const byLabel = labelled(labels, LABEL_SHARED_MOUNTS);
  return info.mounts.filter((m) => m.type === 'bind' && (byLabel.has(clean(m.destination)) || underFolder(m.source, config.checkpoint.sharedMounts)));
}

/**
 * The bind mounts Ferry copies (by label, or by config folder), shared ones excepted: a
 * folder both hosts see needs no copy, and copying into it would copy it onto itself.
 */
export function declaredCopiedMounts(info: ContainerInfo, config: { checkpoint: CheckpointSettings }, labels: Record<string, string> = info.labels): MountInfo[] {
  const shared = new Set(declaredSharedMounts(info, config, labels));
  const byLabel = labelled(labels, LABEL_COPY_MOUNTS);
  return info.mounts.filter((m) => m.type === 'bind' && !shared.has(m) && (byLabel.has(clean(m.destination)) || underFolder(m.source, config.checkpoint.copyMounts)));
}

/**
 * Everything about the container that would be lost, split or refused after the freeze,
 * found from `podman container inspect` alone. Pure; [] means nothing stands in the way.
 * Each message names the reason and the way out (docs/what-moves.md has them all).
 */
export function movabilityProblems(info: ContainerInfo, config: { checkpoint: CheckpointSettings }, labels: Record<string, string> = info.labels): MovabilityProblem[] {
  const problems: MovabilityProblem[] = [];
  const shared = new Set(declaredSharedMounts(info, config, labels));
  const copied = new Set(declaredCopiedMounts(info, config, labels));
  const podLabel = info.podName ? `pod ${info.podName} (${info.pod.slice(0, 12)})` : `pod ${info.pod.slice(0, 12)}`;

  // podman restores a pod's container only into its pod ("cannot restore pod container
  // without --pod"), found after the freeze; the infra container holds the namespaces every
  // member uses, so it cannot leave alone either.
  if (info.pod && info.infra) {
    problems.push({
      code: 'POD_INFRA',
      message: `container is the infra container of ${podLabel}: it holds the namespaces of every member of the pod, and Ferry cannot move pods yet; leave the pod where it is, or recreate it on the other host`,
    });
  } else if (info.pod) {
    problems.push({
      code: 'POD_MEMBER',
      message: `container is a member of ${podLabel}: podman restores a pod's container only into its pod, and Ferry cannot move pods yet; run the service as a standalone container to make it movable, or recreate the pod on the other host`,
    });
  } else {
    // Outside a pod, a namespace shared with another container (`--network container:x`,
    // `--requires`) ties the container to one that stays behind.
    const sharedNs = /^container:(.+)$/.exec(info.networkMode)?.[1];
    if (sharedNs || info.dependencies.length > 0) {
      const other = (sharedNs ?? info.dependencies[0]).slice(0, 12);
      problems.push({
        code: 'SHARED_NAMESPACE',
        message: `container depends on container ${other} (${sharedNs ? 'it uses its network namespace' : 'it requires it'}), which would stay behind; Ferry moves one container at a time: run it with its own network (no --network container:…, no --requires) to make it movable`,
      });
    }
  }

  for (const m of info.mounts) {
    if (m.type === 'tmpfs') continue; // CRIU dumps a tmpfs's content with the process: it moves.
    if (m.type === 'bind') {
      if (shared.has(m) || copied.has(m)) continue;
      problems.push({
        code: 'BIND_MOUNT_NOT_SHARED',
        message:
          `bind mount ${m.source} (at ${m.destination} in the container${m.readOnly ? ', read-only' : ''}) is a folder of this host: after the move the container would use the destination's ${m.source} (other content, or missing) while its data stays here. ` +
          `If both hosts see the same storage at ${m.source} (e.g. NFS), declare it: label ${LABEL_SHARED_MOUNTS}=${m.destination} on the container, or ${clean(m.source)} in checkpoint.sharedMounts; Ferry then checks the destination sees the same folder. Otherwise let Ferry copy it: label ${LABEL_COPY_MOUNTS}=${m.destination}, or ${clean(m.source)} in checkpoint.copyMounts`,
      });
    } else if (m.type === 'volume') {
      // Ferry copies volumes itself, beside the checkpoint; what stops one (driver, sharing,
      // a namesake on the destination) needs podman on both hosts: steps/volumes.ts.
      continue;
    } else {
      problems.push({
        code: 'MOUNT_UNSUPPORTED',
        message: `${m.type || 'unknown'} mount at ${m.destination}: Ferry does not know that it survives a restore on another host, so it does not try; remove the mount to make the container movable`,
      });
    }
  }

  // An established connection survives only where the container keeps its address: with
  // --network host its address is the host's, and without keepAddress the destination
  // gives it a new one. Either way the client's connection would hang, not fail.
  if (config.checkpoint.tcpEstablished && info.networkMode !== 'none') {
    if (info.networkMode === 'host') {
      problems.push({
        code: 'TCP_WITHOUT_ADDRESS',
        message: `checkpoint.tcpEstablished is on, but the container uses the host's network (--network host), so its address is the host's and cannot follow it: its clients' connections would hang; turn checkpoint.tcpEstablished off (clients then reconnect) or run it on a network whose address moves with it`,
      });
    } else if (!config.checkpoint.keepAddress) {
      problems.push({
        code: 'TCP_WITHOUT_ADDRESS',
        message: `checkpoint.tcpEstablished is on but checkpoint.keepAddress is off: established connections survive only if the container keeps its address on the destination, otherwise its clients hang; turn checkpoint.keepAddress on where the address moves with the container (a network spanning the hosts), or turn checkpoint.tcpEstablished off so clients reconnect`,
      });
    }
  }
  return problems;
}
