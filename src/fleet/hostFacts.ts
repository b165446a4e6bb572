import type { HostConfig } from '../config/hosts';
import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import { str } from '../podman/parse';

export interface ContainerFact {
  name: string;
  id: string;
  state: string;
  labels: Record<string, string>;
  memoryMb: number;
}

export interface HostFacts {
  host: string;
  reachable: boolean;
  error?: string;
  podmanVersion?: string;
  runtime?: string;
  criuVersion?: string;
  memTotalMb?: number;
  memFreeMb?: number;
  /**
   * What CRIU on the host offers beyond a plain checkpoint: pre-copy needs the kernel's
   * soft-dirty tracking, post-copy needs userfaultfd. Asked only by `ferry hosts`.
   */
  memoryCopy?: { preCopy: boolean; postCopy: boolean };
  containers: ContainerFact[];
}

// One remote command for both features: each SSH command costs a remote shell start.
const MEMORY_COPY_CHECK = 'criu check --feature mem_dirty_track >/dev/null 2>&1 && echo pre-copy; criu check --feature uffd-noncoop >/dev/null 2>&1 && echo post-copy; true';

type Json = Record<string, unknown>;

/** podman's sizes are SI ("2.474MB", "25.28GB", "512kB", "0B"). */
export function parseSize(text: string): number {
  const m = /^([\d.]+)\s*([kKMGT]?i?B)$/.exec(text.trim());
  if (!m) return 0;
  const unit = m[2].replace('i', '').toUpperCase();
  const mult: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };
  return Number(m[1]) * (mult[unit] ?? 1);
}

/** `podman ps --format json` plus `podman stats --no-stream --format json` into facts. */
export function parseContainers(psJson: string, statsJson: string): ContainerFact[] {
  const ps = JSON.parse(psJson || '[]') as Json[];
  const stats = JSON.parse(statsJson || '[]') as Json[];
  const mem = new Map<string, number>();
  for (const s of stats) mem.set(String(s.name), parseSize(str(s.mem_usage, '0B').split('/')[0]) / 1e6);
  return ps.map((c) => {
    const names = Array.isArray(c.Names) ? (c.Names as unknown[]).map(String) : [];
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries((c.Labels as Json | null) ?? {})) labels[k] = String(v);
    return { name: names[0] ?? '', id: str(c.Id), state: str(c.State), labels, memoryMb: Math.ceil(mem.get(names[0] ?? '') ?? 0) };
  });
}

async function out(runner: CommandRunner, argv: string[]): Promise<string> {
  const r = await runner.run(argv, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new CommandError(runner.where, argv, r.code, r.stderr);
  return r.stdout;
}

/** What a host says about itself: versions, memory, and every container with its labels. */
export async function gatherHostFacts(host: HostConfig, runner: CommandRunner, opts: { memoryCopy?: boolean } = {}): Promise<HostFacts> {
  const p = host.podman;
  try {
    const info = (await out(runner, [...p, 'info', '--format', '{{.Version.Version}} {{.Host.OCIRuntime.Name}} {{.Host.MemTotal}} {{.Host.MemFree}}'])).trim().split(' ');
    const ps = await out(runner, [...p, 'ps', '--all', '--format', 'json']);
    const running = (JSON.parse(ps || '[]') as Json[]).some((c) => c.State === 'running');
    const stats = running ? await out(runner, [...p, 'stats', '--no-stream', '--format', 'json']) : '[]';
    const criu = await runner.run(['criu', '--version']);
    const features = opts.memoryCopy ? (await runner.run(['sh', '-c', MEMORY_COPY_CHECK], { timeoutMs: 60_000 })).stdout : undefined;
    return {
      host: host.name,
      reachable: true,
      podmanVersion: info[0],
      runtime: info[1],
      memTotalMb: Math.floor(Number(info[2]) / 1e6),
      memFreeMb: Math.floor(Number(info[3]) / 1e6),
      criuVersion: /Version:\s*(\S+)/.exec(criu.stdout)?.[1],
      ...(features === undefined ? {} : { memoryCopy: { preCopy: /^pre-copy$/m.test(features), postCopy: /^post-copy$/m.test(features) } }),
      containers: parseContainers(ps, stats),
    };
  } catch (e: unknown) {
    return { host: host.name, reachable: false, error: (e as Error).message, containers: [] };
  }
}
