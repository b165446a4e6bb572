import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stopChildren } from './children';

export interface SentinelSet {
  /** The master group's name and the sentinel's "host:port", as Ferry's redis.sentinel wants them. */
  name: string;
  sentinel: string;
  /** "host:port" of the current master, as the sentinel reports it. */
  master(): string;
  /** Asks the sentinel to promote the replica now (a planned failover: no write is lost). */
  failover(): void;
  stop(): Promise<void>;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function waitFor(p: ChildProcess, text: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    p.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) resolve();
    });
    p.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${seen.slice(-500)}`)));
  });
}

/**
 * A master, a replica and one sentinel (quorum 1) on `host`, password-protected and
 * noeviction, started by the test and stopped by their pids.
 */
export async function startSentinelSet(host: string, password: string, dir: string): Promise<SentinelSet> {
  const procs: ChildProcess[] = [];
  const stop = () => stopChildren(procs);
  const cli = (port: number, args: string[]) => execFileSync('redis-cli', ['-h', host, '-p', String(port), '-a', password, '--no-auth-warning', ...args], { timeout: 10_000 }).toString();
  try {
    const common = ['--bind', host, '--requirepass', password, '--masterauth', password, '--maxmemory-policy', 'noeviction', '--save', '', '--appendonly', 'no', '--dir', dir];
    const masterPort = await freePort(host);
    const master = spawn('redis-server', ['--port', String(masterPort), '--dbfilename', `m-${masterPort}.rdb`, ...common], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(master);
    await waitFor(master, 'Ready to accept connections', 'master');
    const replicaPort = await freePort(host);
    const replica = spawn('redis-server', ['--port', String(replicaPort), '--dbfilename', `r-${replicaPort}.rdb`, '--replicaof', host, String(masterPort), ...common], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(replica);
    await waitFor(replica, 'MASTER <-> REPLICA sync: Finished', 'replica');
    const sentinelPort = await freePort(host);
    const name = 'ferrymaster';
    const conf = join(dir, `sentinel-${sentinelPort}.conf`);
    writeFileSync(
      conf,
      [
        `port ${sentinelPort}`,
        `bind ${host}`,
        `dir ${dir}`,
        `sentinel monitor ${name} ${host} ${masterPort} 1`,
        `sentinel auth-pass ${name} ${password}`,
        `requirepass ${password}`,
        `sentinel down-after-milliseconds ${name} 2000`,
        `sentinel failover-timeout ${name} 10000`,
        '',
      ].join('\n'),
    );
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(sentinel);
    await waitFor(sentinel, '+monitor master', 'sentinel');
    // The sentinel learns of the replica from the master's INFO, within a few seconds.
    for (let i = 0; i < 100 && !cli(sentinelPort, ['sentinel', 'replicas', name]).includes(String(replicaPort)); i++) await new Promise((r) => setTimeout(r, 100));
    const master1 = () => cli(sentinelPort, ['sentinel', 'get-master-addr-by-name', name]).trim().split('\n').join(':');
    return {
      name,
      sentinel: `${host}:${sentinelPort}`,
      master: master1,
      failover: () => void cli(sentinelPort, ['sentinel', 'failover', name]),
      stop,
    };
  } catch (e: unknown) {
    await stop();
    throw e;
  }
}
