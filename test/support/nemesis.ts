import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hostInfo, OUTPUT, onHost, TestConfig } from './bed';

/**
 * Process-level tools of the nemesis suite (test/nemesis): workers in process groups of their
 * own (so a whole worker, podman and ssh children included, can be paused or killed without
 * touching mocha), optionally under libfaketime; the CLI of the same build; iptables rules
 * that are always removed.
 */

/**
 * The compiled tree this file belongs to (dist/, or a private outDir such as .dist-nemesis):
 * workers and the CLI run that same build, not whatever bin/ferry.js loads.
 */
const DIST_ROOT = resolve(__dirname, '..', '..');
const LAUNCHER = join(
  OUTPUT,
  'nemesis',
  `ferry-${DIST_ROOT.split('/')
    .pop()
    ?.replace(/[^\w.-]/g, '_')}.js`,
);

function launcher(): string {
  if (!existsSync(LAUNCHER)) {
    mkdirSync(join(OUTPUT, 'nemesis'), { recursive: true });
    // bin/ferry.js, pointed at this build.
    writeFileSync(LAUNCHER, `'use strict';\nconst { main } = require(${JSON.stringify(join(DIST_ROOT, 'src', 'cli', 'main.js'))});\nmain(process.argv).then((code) => { process.exitCode = code; });\n`);
  }
  return LAUNCHER;
}

export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

export interface GroupWorker {
  host: string;
  child: ChildProcess;
  exited: Promise<void>;
  alive(): boolean;
  /** A signal to the worker's whole process group (node, and the podman/ssh it started). */
  group(signal: NodeJS.Signals): void;
  kill(tree: boolean): Promise<void>;
}

/**
 * `ferry worker --host H` inside the bed host, as its own process group (detached); `skew`
 * ("+5m") runs it under libfaketime with only the wall clock moved, as a skewed host's clock is.
 */
export function startGroupWorker(host: string, cfg: TestConfig, logFile: string, opts: { skew?: string } = {}): Promise<GroupWorker> {
  const h = hostInfo(host);
  const log = createWriteStream(logFile, { flags: 'a' });
  const env: NodeJS.ProcessEnv = { ...process.env, FERRY_CONFIG: '' };
  if (opts.skew) Object.assign(env, { LD_PRELOAD: FAKETIME_LIB, FAKETIME: opts.skew, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_DONT_RESET: '1' });
  // nsenter without a pid namespace execs node: the group leader is the worker itself.
  const child = spawn('nsenter', [`--mount=${h.mountns}`, `--net=${h.netns}`, process.execPath, launcher(), '--config', cfg.file, 'worker', '--host', host], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const w: GroupWorker = {
    host,
    child,
    exited,
    alive,
    group(signal) {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is gone.
      }
    },
    async kill(tree) {
      if (tree) w.group('SIGKILL');
      else if (alive()) child.kill('SIGKILL');
      // A stopped process dies on SIGKILL, but its stopped children would wait for SIGCONT.
      w.group('SIGCONT');
      await exited;
    },
  };
  return new Promise((res, rej) => {
    let seen = '';
    const timer = setTimeout(() => rej(new Error(`worker for ${host} not ready after 60 s: ${seen.slice(-1000)}`)), 60_000);
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('worker ready')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        res(w);
      }
    };
    child.stdout?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`worker for ${host} exited with ${code} before it was ready: ${seen.slice(-1000)}`));
    });
  });
}

/** The CLI of this build, from the root namespace, as an operator runs it. */
export function ferryCli(cfg: TestConfig, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [launcher(), '--config', cfg.file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FERRY_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

/** Inserts iptables rules in a host's network namespace; the returned undo deletes exactly them. */
export function iptables(host: string, rules: string[][]): () => void {
  const added: string[][] = [];
  for (const rule of rules) {
    const r = onHost(host, ['iptables', '-I', ...rule]);
    if (r.code !== 0) throw new Error(`iptables -I ${rule.join(' ')} on ${host}: ${r.stderr}`);
    added.push(rule);
  }
  return () => {
    for (const rule of added) onHost(host, ['iptables', '-D', ...rule]);
  };
}
