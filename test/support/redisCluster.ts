import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stopChildren } from './children';

export interface RedisClusterNodes {
  /** "host:port" of each master, as Ferry's redis.cluster.nodes wants them. */
  nodes: string[];
  stop(): Promise<void>;
}

/** A port whose cluster bus port (port + 10000) is free too, on `host`. */
async function freePair(host: string): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, host, () => srv.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await tryListen(port)) && (await tryListen(port + 10_000))) return port;
  }
  throw new Error(`no free port pair on ${host}`);
}

/**
 * Three redis-server masters in cluster mode on `host` (the bed's bridge address, so the
 * workers in the bed's hosts reach them), password-protected, noeviction, no persistence:
 * started by the test, stopped by their pids.
 */
export async function startRedisCluster(host: string, password: string, dir: string): Promise<RedisClusterNodes> {
  const procs: ChildProcess[] = [];
  const stop = () => stopChildren(procs);
  try {
    const nodes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePair(host);
      const nodeDir = join(dir, `node-${port}`);
      mkdirSync(nodeDir, { recursive: true });
      const args = [
        '--port',
        String(port),
        '--bind',
        host,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(nodeDir, 'nodes.conf'),
        '--requirepass',
        password,
        '--masterauth',
        password,
        '--maxmemory-policy',
        'noeviction',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        nodeDir,
      ];
      const p = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(p);
      await new Promise<void>((resolve, reject) => {
        let seen = '';
        p.stdout?.on('data', (d: Buffer) => {
          seen += d.toString();
          if (seen.includes('Ready to accept connections')) resolve();
        });
        p.once('exit', (code) => reject(new Error(`redis-server on ${host}:${port} exited with ${code}: ${seen.slice(-500)}`)));
      });
      nodes.push(`${host}:${port}`);
    }
    execFileSync('redis-cli', ['-a', password, '--no-auth-warning', '--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'pipe', timeout: 30_000 });
    // Slots are assigned at once; the nodes agree on "cluster_state:ok" a moment later.
    for (let i = 0; i < 100; i++) {
      const ok = nodes.every((n) => {
        const [h, p] = [n.slice(0, n.lastIndexOf(':')), n.slice(n.lastIndexOf(':') + 1)];
        return execFileSync('redis-cli', ['-h', h, '-p', p, '-a', password, '--no-auth-warning', 'cluster', 'info']).toString().includes('cluster_state:ok');
      });
      if (ok) return { nodes, stop };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the cluster did not reach cluster_state:ok in 10 s');
  } catch (e: unknown) {
    await stop();
    throw e;
  }
}
