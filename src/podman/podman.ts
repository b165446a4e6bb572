import type { Readable, Writable } from 'node:stream';
import { CommandError, StepError } from '../errors';
import type { CommandResult, CommandRunner } from '../exec/runner';
import { criuConfigLines, criuWrapper } from './criuConfig';
import { criuLogPath, CriuOperation, describeCriuFailure, diagnoseCriuLog } from './criuLog';
import { ContainerInfo, CriuStats, parseBindSources, parseCheckpointStats, parseInspect } from './parse';
import { PodmanVolumes } from './volumes';

export interface CheckpointOptions {
  compression: 'none' | 'gzip' | 'zstd';
  tcpEstablished: boolean;
  fileLocks: boolean;
  /** Skip in-flight connections, and close established ones cleanly unless tcpEstablished keeps them (see criuConfig.ts). */
  skipInFlight?: boolean;
  /** Leave volume contents out of the archive: Ferry moves them itself (steps/volumes.ts). */
  ignoreVolumes?: boolean;
  timeoutMs?: number;
}

/** A checkpoint or restore that CRIU refused: the message says CRIU's cause, from its log; `permanent` when retrying cannot fix it. */
export class CriuError extends CommandError {
  override readonly code = 'CRIU_FAILED';
  readonly causes: readonly string[];
  readonly logPath: string;

  constructor(where: string, argv: readonly string[], exitCode: number | null, stderr: string, criu: { op: CriuOperation; causes: string[]; permanent: boolean; hint?: string; logPath: string }) {
    super(where, argv, exitCode, stderr, { permanent: criu.permanent });
    this.name = 'CriuError';
    this.causes = criu.causes;
    this.logPath = criu.logPath;
    // podman's own words ("criu failed: type NOTIFY errno 0", a runc command line) say nothing a user can act on.
    this.message = `${where}: ${describeCriuFailure(criu.op, criu)}; \`${argv.join(' ')}\` exited with ${exitCode ?? 'a signal'}, CRIU's log: ${criu.logPath}`;
    Object.setPrototypeOf(this, CriuError.prototype);
  }
}

/**
 * podman on one host, through whichever runner reaches it. Every call is an argument
 * vector; container names were validated before they got here.
 */
export class Podman {
  constructor(
    private readonly runner: CommandRunner,
    /** How podman is started on the host (e.g. `sudo -n podman`): for scripts that run it. */
    readonly command: readonly string[],
  ) {}

  get where(): string {
    return this.runner.where;
  }

  get volumes(): PodmanVolumes {
    return new PodmanVolumes(this.runner, this.command);
  }

  private argv(args: readonly string[]): string[] {
    return [...this.command, ...args];
  }

  private async ok(args: readonly string[], opts: { stdin?: Readable | string; stdout?: Writable; timeoutMs?: number; permanent?: boolean; criu?: CriuOperation; uninterruptible?: boolean } = {}): Promise<CommandResult> {
    const argv = this.argv(args);
    const res = await this.runner.run(argv, opts);
    if (res.code !== 0) throw (opts.criu ? await this.criuError(opts.criu, argv, res) : null) ?? new CommandError(this.runner.where, argv, res.code, res.stderr, { permanent: opts.permanent });
    return res;
  }

  /**
   * CRIU's cause of a failed checkpoint or restore, read from the log podman names (on this
   * podman's host: the step runs where podman runs). Null when podman failed before CRIU, or
   * the log cannot be read: the plain command error is then all there is.
   */
  private async criuError(op: CriuOperation, argv: readonly string[], res: CommandResult): Promise<CriuError | null> {
    const logPath = criuLogPath(res.stderr);
    if (!logPath) return null;
    // The cause is near the end; the start of a large log is CRIU's inventory of the process tree.
    const log = await this.runner.run(['tail', '-c', '262144', '--', logPath], { timeoutMs: 10_000 }).catch(() => null);
    if (log?.code !== 0) return null;
    return new CriuError(this.runner.where, argv, res.code, res.stderr, { op, logPath, ...diagnoseCriuLog(log.stdout) });
  }

  async version(): Promise<string> {
    const res = await this.ok(['version', '--format', '{{.Client.Version}}']);
    return res.stdout.trim();
  }

  /**
   * The container, or null when the host has none by that name. One command when it exists
   * (the usual case); only a failed inspect asks `container exists`, since the exit code,
   * not podman's message, must tell "no such container" from a broken podman.
   */
  async inspect(name: string): Promise<ContainerInfo | null> {
    const argv = this.argv(['container', 'inspect', name]);
    const res = await this.runner.run(argv);
    if (res.code === 0) return this.withPodName(parseInspect(res.stdout));
    const existsArgv = this.argv(['container', 'exists', name]);
    const exists = await this.runner.run(existsArgv);
    if (exists.code === 1) return null;
    if (exists.code !== 0) throw new CommandError(this.runner.where, existsArgv, exists.code, exists.stderr);
    throw new CommandError(this.runner.where, argv, res.code, res.stderr);
  }

  // Container inspect has only the pod's id; a message should name the pod as its user does.
  // A second command, but only for pod members, which preflight refuses anyway.
  private async withPodName(info: ContainerInfo): Promise<ContainerInfo> {
    if (!info.pod) return info;
    const res = await this.runner.run(this.argv(['pod', 'inspect', '--format', '{{.Name}}', info.pod]));
    return res.code === 0 ? { ...info, podName: res.stdout.trim() } : info;
  }

  /**
   * Like inspect, for where the container is usually absent (a destination before restore):
   * one `container exists` then, instead of a failing inspect followed by exists. Over SSH
   * every command costs a remote shell start.
   */
  async find(name: string): Promise<ContainerInfo | null> {
    const argv = this.argv(['container', 'exists', name]);
    const res = await this.runner.run(argv);
    if (res.code === 1) return null;
    if (res.code !== 0) throw new CommandError(this.runner.where, argv, res.code, res.stderr);
    return this.inspect(name);
  }

  /**
   * Ids of containers by this exact name that podman's storage holds but podman itself no
   * longer tracks (`--external`): what a removal cut short by a full disk leaves. inspect
   * cannot see them, yet they keep the name's container id taken.
   */
  async storageOnlyIds(name: string): Promise<string[]> {
    const filter = `name=^${name.replace(/[.]/g, '\\.')}$`;
    const res = await this.ok(['ps', '--all', '--external', '--no-trunc', '--filter', filter, '--format', '{{.ID}} {{.Names}} {{.Status}}']);
    return res.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([id, n, status]) => /^[0-9a-f]{64}$/.test(id ?? '') && n === name && status === 'Storage')
      .map(([id]) => id);
  }

  /** The host folders every other container on this host (running or not) bind-mounts. */
  async bindSourcesOfOthers(exceptId: string): Promise<{ id: string; sources: string[] }[]> {
    const ids = (await this.ok(['ps', '--all', '--no-trunc', '--format', '{{.ID}}'])).stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((id) => id && id !== exceptId);
    return ids.length ? parseBindSources((await this.ok(['container', 'inspect', ...ids])).stdout) : [];
  }

  async imageExists(ref: string): Promise<boolean> {
    const argv = this.argv(['image', 'exists', ref]);
    const res = await this.runner.run(argv);
    if (res.code === 0) return true;
    if (res.code === 1) return false;
    throw new CommandError(this.runner.where, argv, res.code, res.stderr);
  }

  /**
   * podman's global flags that give CRIU the options of `criuConfigLines` for this one command,
   * after making sure the wrapper they name is on this host. None when CRIU's defaults apply.
   */
  private async criuFlags(op: CriuOperation, opts: { skipInFlight?: boolean; tcpEstablished: boolean }): Promise<string[]> {
    const wrapper = criuWrapper(criuConfigLines(op, opts));
    if (!wrapper) return [];
    const res = await this.runner.run(wrapper.install, { timeoutMs: 10_000 });
    if (res.code !== 0) throw new CommandError(this.runner.where, wrapper.install.slice(0, 2), res.code, res.stderr);
    return wrapper.podmanFlags;
  }

  async checkpoint(name: string, archive: string, opts: CheckpointOptions): Promise<CriuStats> {
    const args = [...(await this.criuFlags('checkpoint', opts)), 'container', 'checkpoint', '--export', archive, '--compress', opts.compression, '--print-stats'];
    if (opts.tcpEstablished) args.push('--tcp-established');
    if (opts.fileLocks) args.push('--file-locks');
    if (opts.ignoreVolumes) args.push('--ignore-volumes');
    args.push(name);
    const res = await this.ok(args, { timeoutMs: opts.timeoutMs, criu: 'checkpoint' });
    return parseCheckpointStats(res.stdout);
  }

  async restoreImport(archive: string, opts: { tcpEstablished: boolean; fileLocks: boolean; keepAddress: boolean; skipInFlight?: boolean; ignoreVolumes?: boolean; timeoutMs?: number }): Promise<CriuStats> {
    const args = [...(await this.criuFlags('restore', opts)), 'container', 'restore', '--import', archive, '--print-stats'];
    if (opts.tcpEstablished) args.push('--tcp-established');
    // Open TCP connections only survive on the same address; otherwise let the new host choose.
    else if (!opts.keepAddress) args.push('--ignore-static-ip', '--ignore-static-mac');
    if (opts.fileLocks) args.push('--file-locks');
    if (opts.ignoreVolumes) args.push('--ignore-volumes');
    const res = await this.ok(args, { timeoutMs: opts.timeoutMs, criu: 'restore' });
    return parseCheckpointStats(res.stdout);
  }

  /** Restores a checkpointed container where it stands (the rollback path; no archive). */
  async restoreInPlace(name: string, opts: { tcpEstablished: boolean; fileLocks: boolean; skipInFlight?: boolean; newAddress?: boolean; timeoutMs: number }): Promise<void> {
    // An image dumped with tcp-close restores only with it: the rollback needs the same options as a restore elsewhere.
    const args = [...(await this.criuFlags('restore', opts)), 'container', 'restore'];
    if (opts.tcpEstablished) args.push('--tcp-established');
    // Its own address may have gone to another container while it was frozen (recoverFrozen.ts).
    if (opts.newAddress) args.push('--ignore-static-ip', '--ignore-static-mac');
    if (opts.fileLocks) args.push('--file-locks');
    args.push(name);
    // Finished even when its step attempt is stopped meanwhile (a take-over, a duplicate
    // delivery): podman killed half-way leaves the container itself running outside its sight.
    await this.ok(args, { timeoutMs: opts.timeoutMs, criu: 'restore', uninterruptible: true });
  }

  /** Runs a command inside the container; the exit code is the answer. */
  async execIn(name: string, argv: readonly string[], timeoutMs = 10_000): Promise<CommandResult> {
    return this.runner.run(this.argv(['container', 'exec', name, ...argv]), { timeoutMs });
  }

  async remove(name: string): Promise<void> {
    await this.ok(['container', 'rm', '--force', '--time', '0', name]);
  }

  /** The OCI runtime podman runs containers with here: its `--runtime` flag, else runc. */
  private runtime(): string {
    const i = this.command.indexOf('--runtime');
    if (i >= 0 && this.command[i + 1]) return this.command[i + 1];
    const joined = this.command.find((a) => a.startsWith('--runtime='));
    return joined ? joined.slice('--runtime='.length) : 'runc';
  }

  /**
   * What the runtime itself holds for this id, whatever podman's records say: its status
   * ('running', 'paused', 'created', 'stopped'), 'restoring' when its state folder exists
   * without a state yet (runc writes the state only once CRIU has restored the processes), or
   * null. A host without that runtime holds nothing of it.
   */
  async runtimeState(id: string): Promise<string | null> {
    const rt = this.runtime();
    let res: CommandResult;
    try {
      res = await this.runner.run([rt, 'state', id]);
    } catch (e: unknown) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    if (res.code === 0) return /"status":\s*"([a-z]+)"/.exec(res.stdout)?.[1] ?? 'unknown';
    if (res.code === 127) return null;
    if (!/does not exist/i.test(res.stderr)) throw new CommandError(this.runner.where, [rt, 'state', id], res.code, res.stderr);
    const dir = await this.runner.run(['test', '-d', `/run/${rt.split('/').pop() ?? 'runc'}/${id}`]);
    return dir.code === 0 ? 'restoring' : null;
  }

  /**
   * Deletes what the runtime still holds for this id. podman killed in the middle of a restore
   * (a time limit, a lost job lock, SIGKILL) leaves the restored container running under
   * conmon, unknown to podman, and `podman rm` then drops podman's record but not the
   * processes: measured here (podman 4.3.1, runc 1.1) when podman died 0.6 s or more into the
   * restore of a 32 MB container, 3 of 3. Such a copy runs beside the one brought back on the
   * other host. A restore still under way (CRIU restoring, its podman gone) is waited for.
   *
   * Only for a caller holding the container's lock on this host, after podman said it does not
   * run it. `keepRunning`: a running copy is the container itself (on its source, an in-place
   * restore whose podman died): never killed, refused for a person. True when something went.
   */
  async reapRuntimeLeftover(id: string, opts: { keepRunning?: boolean; waitMs?: number } = {}): Promise<boolean> {
    const until = Date.now() + (opts.waitMs ?? 60_000);
    let state = await this.runtimeState(id);
    while (state === 'restoring' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 500));
      state = await this.runtimeState(id);
    }
    if (state === null) return false;
    if (state === 'restoring') throw new StepError(`a restore of container ${id.slice(0, 12)} is still under way on ${this.runner.where} (its runtime holds it, podman does not); trying again later`, { code: 'RESTORE_UNDER_WAY' });
    if (opts.keepRunning && (state === 'running' || state === 'paused')) {
      throw new StepError(
        `container ${id.slice(0, 12)} runs on ${this.runner.where} outside podman's sight (its runtime, ${this.runtime()}, holds it ${state}; podman lost it when it was killed during a restore). It is the container itself: Ferry will not kill it. Stop it with \`${this.runtime()} kill ${id} KILL\` and restore it with podman, or leave it running and remove podman's stale record`,
        { code: 'RUNS_OUTSIDE_PODMAN', permanent: true },
      );
    }
    const argv = [this.runtime(), 'delete', '--force', id];
    const res = await this.runner.run(argv);
    if (res.code !== 0 && (await this.runtimeState(id)) !== null) throw new CommandError(this.runner.where, argv, res.code, res.stderr);
    return true;
  }

  /** Whether the runtime still holds (or is restoring) a container with this id. */
  async runtimeHolds(id: string): Promise<boolean> {
    return (await this.runtimeState(id)) !== null;
  }

  /** Streams `podman save` of an image into `out` (e.g. an SSH channel running `podman load`). */
  async saveImage(ref: string, out: Writable): Promise<void> {
    await this.ok(['image', 'save', ref], { stdout: out });
  }

  async loadImage(input: Readable): Promise<void> {
    await this.ok(['image', 'load'], { stdin: input });
  }
}
