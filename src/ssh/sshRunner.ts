import { readFile } from 'node:fs/promises';
import type { NodeSSH } from 'node-ssh';
import type { ClientChannel } from 'ssh2';
import type { HostConfig } from '../config/hosts';
import { AttemptAbortedError, SshError } from '../errors';
import { coerceError } from '../errors/coerceError';
import { CommandResult, CommandRunner, KILL_GRACE_MS, RunOptions, shellJoin } from '../exec/runner';
import { knownHostsName, parseKnownHosts, verifyHostKey } from './knownHosts';

export interface SshRunnerOptions {
  connectTimeoutMs: number;
}

/**
 * Runs commands on one host over a kept-warm SSH connection (node-ssh). Arguments are
 * quoted one by one for the remote shell; success is judged by exit code alone.
 */
export class SshRunner implements CommandRunner {
  readonly where: string;
  private conn: NodeSSH | undefined;
  private connecting: Promise<NodeSSH> | undefined;

  constructor(
    private readonly host: HostConfig,
    private readonly opts: SshRunnerOptions,
  ) {
    this.where = `host ${host.name} (${host.ssh.user}@${host.address}:${host.ssh.port})`;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const signal = opts.signal;
    const stopped = (): AttemptAbortedError => new AttemptAbortedError(`\`${argv[0]}\` on ${this.where} was stopped: the attempt was stopped`, { cause: signal?.reason });
    if (signal?.aborted) throw stopped();
    const ssh = await this.connect();
    if (signal?.aborted) throw stopped();
    let channel: ClientChannel | undefined;
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    // The remote process is told to stop (OpenSSH passes signals on since 7.9), then its
    // channel is closed; closing alone may leave it running until it next writes.
    const stop = (sig: 'TERM' | 'KILL'): void => {
      try {
        channel?.signal(sig);
      } catch {
        // The channel is already gone: so is the command's hold on it.
      }
    };
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          stop('KILL');
          channel?.close();
        }, opts.timeoutMs)
      : undefined;
    const onAbort = (): void => {
      aborted = true;
      stop('TERM');
      killTimer = setTimeout(() => {
        stop('KILL');
        channel?.close();
      }, KILL_GRACE_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await ssh.execCommand(shellJoin(argv), {
        stdin: opts.stdin,
        noTrim: true,
        onChannel: (c) => {
          channel = c;
        },
        onStdout: opts.stdout ? (chunk) => opts.stdout?.write(chunk) : undefined,
      });
      if (aborted) throw stopped();
      return {
        code: timedOut ? null : res.code,
        stdout: opts.stdout ? '' : res.stdout,
        stderr: timedOut ? `${res.stderr}\n(killed after ${opts.timeoutMs} ms time limit)` : res.stderr,
      };
    } catch (e: unknown) {
      if (e instanceof AttemptAbortedError) throw e;
      if (aborted) throw stopped();
      this.drop();
      throw new SshError(this.host.name, 'channel', `${this.where}: SSH command failed: ${coerceError(e).message}`, e);
    } finally {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Opens the connection (once; concurrent callers share it) and verifies the host key. */
  connect(): Promise<NodeSSH> {
    if (this.conn?.isConnected()) return Promise.resolve(this.conn);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<NodeSSH> {
    const h = this.host;
    let privateKey: string;
    try {
      privateKey = await readFile(h.ssh.privateKey, 'utf8');
    } catch (e: unknown) {
      throw new SshError(h.name, 'auth', `${this.where}: cannot read SSH private key ${h.ssh.privateKey}: ${coerceError(e).message}`, e);
    }
    let knownText = '';
    try {
      knownText = await readFile(h.ssh.knownHosts, 'utf8');
    } catch {
      // A missing known_hosts file means every key is unknown: reported below, precisely.
    }
    const entries = parseKnownHosts(knownText);
    const name = knownHostsName(h.address, h.ssh.port);
    let keyProblem: SshError | undefined;
    // Loaded only when a connection is opened: node-ssh and ssh2 cost ~0.15 s of start-up
    // to every CLI command that never talks SSH.
    const { NodeSSH } = await import('node-ssh');
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host: h.address,
        port: h.ssh.port,
        username: h.ssh.user,
        privateKey,
        readyTimeout: this.opts.connectTimeoutMs,
        keepaliveInterval: 10_000,
        hostVerifier: (key: Buffer) => {
          const verdict = verifyHostKey(entries, name, key);
          if (verdict.ok) return true;
          keyProblem =
            verdict.reason === 'unknown'
              ? new SshError(h.name, 'host-key-unknown', `${this.where}: host key is not in ${h.ssh.knownHosts}; refusing to connect. Trust it explicitly with \`ferry hosts trust ${h.name}\` after checking its fingerprint`)
              : new SshError(h.name, 'host-key-changed', `${this.where}: host key does NOT match ${h.ssh.knownHosts} (${verdict.reason}); refusing to connect: the host may have been replaced or the connection intercepted`);
          return false;
        },
      });
    } catch (e: unknown) {
      ssh.dispose();
      if (keyProblem) throw keyProblem;
      throw classifyConnectError(h.name, this.where, h.ssh.privateKey, e);
    }
    ssh.connection?.on('close', () => {
      if (this.conn === ssh) this.conn = undefined;
    });
    ssh.connection?.on('error', () => {
      // Surfaced by the next run() as a failed exec; a stray event must not crash the worker.
    });
    this.conn = ssh;
    return ssh;
  }

  private drop(): void {
    this.conn?.dispose();
    this.conn = undefined;
  }

  close(): void {
    this.drop();
  }
}

function classifyConnectError(host: string, where: string, keyFile: string, e: unknown): SshError {
  const err = coerceError(e);
  const level = (e as { level?: unknown }).level;
  if (level === 'client-authentication' || /authentication methods failed/i.test(err.message)) {
    return new SshError(host, 'auth', `${where}: SSH authentication failed with key ${keyFile}: ${err.message}`, e);
  }
  if (/cannot parse privatekey|unsupported key format|encrypted private key/i.test(err.message)) {
    return new SshError(host, 'auth', `${where}: SSH private key ${keyFile} is unusable: ${err.message}`, e);
  }
  return new SshError(host, 'unreachable', `${where}: cannot reach host: ${err.message}`, e);
}
