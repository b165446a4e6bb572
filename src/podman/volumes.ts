import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import { str } from './parse';

/** What Ferry needs to know of a podman volume. */
export interface VolumeInfo {
  name: string;
  driver: string;
  /** Where its data lives on the host (the local driver's `_data` folder). */
  mountpoint: string;
  labels: Record<string, string>;
  /** Driver options (`--opt type=nfs,device=…`): a volume with any is not a plain folder. */
  options: Record<string, string>;
}

function record(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, str(x)]));
}

/** Pure: `podman volume inspect NAME` output. */
export function parseVolumeInspect(stdout: string): VolumeInfo {
  const all = JSON.parse(stdout) as unknown;
  const first = (Array.isArray(all) ? all[0] : all) as Record<string, unknown> | undefined;
  if (!first || typeof first !== 'object') throw new Error('podman volume inspect printed no volume');
  return { name: str(first.Name), driver: str(first.Driver), mountpoint: str(first.Mountpoint), labels: record(first.Labels), options: record(first.Options) };
}

/**
 * podman's volumes on one host. Judged by exit codes: `volume exists` answers 1 for "no such
 * volume", anything else non-zero is a broken podman, not an absent volume.
 */
export class PodmanVolumes {
  constructor(
    private readonly runner: CommandRunner,
    private readonly command: readonly string[],
  ) {}

  private async ok(args: readonly string[]): Promise<string> {
    const argv = [...this.command, ...args];
    const res = await this.runner.run(argv);
    if (res.code !== 0) throw new CommandError(this.runner.where, argv, res.code, res.stderr);
    return res.stdout;
  }

  async inspect(name: string): Promise<VolumeInfo | null> {
    const argv = [...this.command, 'volume', 'exists', name];
    const exists = await this.runner.run(argv);
    if (exists.code === 1) return null;
    if (exists.code !== 0) throw new CommandError(this.runner.where, argv, exists.code, exists.stderr);
    return parseVolumeInspect(await this.ok(['volume', 'inspect', name]));
  }

  async create(name: string, labels: Record<string, string>): Promise<VolumeInfo> {
    await this.ok(['volume', 'create', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), name]);
    const info = await this.inspect(name);
    if (!info) throw new CommandError(this.runner.where, ['volume', 'create', name], 0, `volume ${name} is missing right after it was created`);
    return info;
  }

  /** Fails (CommandError) while a container still uses it: never forced. */
  async remove(name: string): Promise<void> {
    await this.ok(['volume', 'rm', name]);
  }

  /** Names of the volumes carrying this label with this value. */
  async labelled(key: string, value: string): Promise<string[]> {
    const out = await this.ok(['volume', 'ls', '--filter', `label=${key}=${value}`, '--format', '{{.Name}}']);
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /** Full ids of every container (running or not) that mounts the volume. */
  async users(name: string): Promise<string[]> {
    const out = await this.ok(['ps', '--all', '--no-trunc', '--filter', `volume=${name}`, '--format', '{{.ID}}']);
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }
}
