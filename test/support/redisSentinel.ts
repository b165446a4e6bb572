import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stopChildren } from './children';
import { saysNoTls, TlsFiles, tlsOnlyArgs, TlsUnsupported } from './tlsRedis';

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
    // A refused directive goes to stderr; both streams are kept so the reason is in the error.
    const keep = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) resolve();
    };
    p.stdout?.on('data', keep);
    p.stderr?.on('data', keep);
    p.once('exit', (code) => {
      const why = `${what} exited with ${code}: ${seen.slice(-500)}`;
      reject(saysNoTls(seen) ? new TlsUnsupported(why) : new Error(why));
    });
  });
}

/**
 * A master, a replica and one sentinel (quorum 1) on `host`, password-protected and
 * noeviction, started by the test and stopped by their pids. With `tls`, all three speak
 * TLS only (no plain port), to clients and to each other, and ask clients for a
 * certificate; `host` must then be 127.0.0.1, the address the certificates name.
 */
export async function startSentinelSet(host: string, password: string, dir: string, opts: { tls?: TlsFiles } = {}): Promise<SentinelSet> {
  const procs: ChildProcess[] = [];
  const stop = () => stopChildren(procs);
  const { tls } = opts;
  const cliTls = tls ? ['--tls', '--cacert', tls.ca, '--cert', tls.clientCert, '--key', tls.clientKey] : [];
  const cli = (port: number, args: string[]) => execFileSync('redis-cli', ['-h', host, '-p', String(port), ...cliTls, '-a', password, '--no-auth-warning', ...args], { timeout: 10_000 }).toString();
  // Either a plain port, or TLS on it and no plain listener.
  const listen = (port: number) => (tls ? tlsOnlyArgs(port, tls, { authClients: true }) : ['--port', String(port)]);
  try {
    const common = ['--bind', host, '--requirepass', password, '--masterauth', password, '--maxmemory-policy', 'noeviction', '--save', '', '--appendonly', 'no', '--dir', dir];
    const masterPort = await freePort(host);
    const master = spawn('redis-server', [...listen(masterPort), '--dbfilename', `m-${masterPort}.rdb`, ...common], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(master);
    await waitFor(master, 'Ready to accept connections', 'master');
    const replicaPort = await freePort(host);
    const replica = spawn('redis-server', [...listen(replicaPort), '--dbfilename', `r-${replicaPort}.rdb`, '--replicaof', host, String(masterPort), ...common], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(replica);
    await waitFor(replica, 'MASTER <-> REPLICA sync: Finished', 'replica');
    const sentinelPort = await freePort(host);
    const name = 'ferrymaster';
    const conf = join(dir, `sentinel-${sentinelPort}.conf`);
    writeFileSync(
      conf,
      [
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
    // How it listens comes from listen(), as for the master and the replica (options given
    // on the command line add to the file's).
    const sentinel = spawn('redis-server', [conf, '--sentinel', ...listen(sentinelPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(sentinel);
    await waitFor(sentinel, '+monitor master', 'sentinel');
    // The sentinel learns of the replica from the master's INFO, within a few seconds, but
    // refuses to promote it (NOGOODSLAVE) until it has talked to the replica itself: flags
    // without "disconnected", and the replica's link to the master seen up.
    let replica1 = '';
    const promotable = () => {
      // One replica: its fields are the whole reply, a key and its value a line each.
      const lines = cli(sentinelPort, ['sentinel', 'replicas', name]).trim().split('\n');
      replica1 = lines.join(' ');
      const field = (k: string) => lines[lines.indexOf(k) + 1];
      return lines.includes(`${host}:${replicaPort}`) && field('flags') === 'slave' && field('master-link-status') === 'ok';
    };
    for (let i = 0; !promotable(); i++) {
      if (i === 150) throw new Error(`the sentinel cannot promote the replica after 15 s: ${replica1}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const master1 = () => cli(sentinelPort, ['sentinel', 'get-master-addr-by-name', name]).trim().split('\n').join(':');
    return {
      name,
      sentinel: `${host}:${sentinelPort}`,
      master: master1,
      failover: () => {
        // redis-cli exits 0 on an error reply: a refused failover must not pass for one begun.
        const reply = cli(sentinelPort, ['sentinel', 'failover', name]).trim();
        if (reply !== 'OK') throw new Error(`the sentinel refused the failover: ${reply}`);
      },
      stop,
    };
  } catch (e: unknown) {
    await stop();
    throw e;
  }
}
