import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** PEM files of a throwaway CA, and of a server and a client certificate it signed. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
  /** For servers that ask clients for a certificate (tls-auth-clients yes). */
  clientCert: string;
  clientKey: string;
}

/** redis-server was built without TLS: the one reason the TLS test may skip itself. */
export class TlsUnsupported extends Error {}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (e: unknown) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${e instanceof Error ? e.message : String(e)}\n${stderr}`);
  }
}

/**
 * A CA valid for a day, a server certificate for 127.0.0.1 and a client certificate, both
 * signed by it, written to `dir`. The address goes into an IP subjectAltName because Node
 * checks an IP against the SAN only, never the CN. Our own openssl config keeps the result
 * independent of the system's openssl.cnf (whose defaults differ between distributions).
 * EC keys: RSA key generation alone can take a second.
 */
export function makeCerts(dir: string): TlsFiles {
  const f = (name: string) => join(dir, name);
  writeFileSync(
    f('openssl.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = unused',
      '[ca]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[server]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = IP:127.0.0.1',
      'authorityKeyIdentifier = keyid',
      // A server checks a client's certificate is for clientAuth, as a client checks serverAuth.
      '[client]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = clientAuth',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', '-config', f('openssl.cnf'), '-extensions', 'ca', ...newKey, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=Ferry throwaway test CA']);
  openssl(['req', '-new', '-config', f('openssl.cnf'), ...newKey, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', '1', '-days', '1', '-extfile', f('openssl.cnf'), '-extensions', 'server', '-out', f('server.crt')]);
  openssl(['req', '-new', '-config', f('openssl.cnf'), ...newKey, '-keyout', f('client.key'), '-out', f('client.csr'), '-subj', '/CN=ferry test client']);
  openssl(['x509', '-req', '-in', f('client.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', '2', '-days', '1', '-extfile', f('openssl.cnf'), '-extensions', 'client', '-out', f('client.crt')]);
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
}

/** A port free right now on 127.0.0.1 (the kernel picks it); launchOnFreePort retries if it is taken in between. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port from the kernel'))));
    });
  });
}

export interface TlsRedis {
  port: number;
  pid: number;
  /** What redis-server printed so far (its log goes to stdout). */
  log(): string;
  /** SIGTERM to the one process we started (SIGKILL if it lingers); safe to call twice. */
  stop(): Promise<void>;
}

const READY = 'Ready to accept connections';
// Without TLS compiled in, redis-server does not know the tls-* directives: it quotes the
// first one (">>> 'tls-port ...'") and says "Bad directive" (or, in builds with TLS as a
// module, says it is not loaded). Anything else is a real failure.
const NO_TLS = /(>>> 'tls-[\s\S]*Bad directive or wrong number of arguments)|(TLS[^\n]*not (supported|built|compiled|loaded))/i;

/** Whether what a redis-server printed before it exited says it cannot do TLS. */
export function saysNoTls(log: string): boolean {
  return NO_TLS.test(log);
}

/**
 * redis-server (or sentinel) options for TLS only: no plain TCP listener at all (port 0),
 * so a connection that works is TLS. Its own connections to other servers (a replica's to
 * its master, a sentinel's to what it monitors) are TLS too, with the client certificate.
 */
export function tlsOnlyArgs(port: number, files: TlsFiles, opts: { authClients: boolean }): string[] {
  return [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    files.cert,
    '--tls-key-file',
    files.key,
    '--tls-ca-cert-file',
    files.ca,
    '--tls-client-cert-file',
    files.clientCert,
    '--tls-client-key-file',
    files.clientKey,
    '--tls-replication',
    'yes',
    '--tls-auth-clients',
    opts.authClients ? 'yes' : 'no',
  ];
}

/** `files` undefined: a plain TCP listener instead of TLS. */
function launch(port: number, dir: string, files: TlsFiles | undefined, password: string): Promise<TlsRedis> {
  const args = [
    '--bind',
    '127.0.0.1',
    // Clients present no certificate: Ferry's config has one, but this test is about the server's.
    ...(files ? tlsOnlyArgs(port, files, { authClients: false }) : ['--port', String(port)]),
    '--requirepass',
    password,
    // What Ferry requires (config check warns otherwise), and nothing written to disk.
    '--maxmemory-policy',
    'noeviction',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // Keep reading after start-up too, so a full pipe never blocks the server; bounded.
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-64_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));

  const server: TlsRedis = {
    port,
    pid: child.pid ?? -1,
    log: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      // child.kill signals exactly this pid, and not at all once Node saw it exit (no reused pid).
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void server.stop();
      reject(new Error(`redis-server on ${files ? 'TLS ' : ''}port ${port} not ready after 10 s:\n${out}`));
    }, 10_000);
    const onData = () => {
      if (out.includes(READY)) {
        clearTimeout(timer);
        resolve(server);
      }
    };
    child.stdout?.on('data', onData);
    child.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run redis-server (is it installed?): ${e.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const why = `redis-server exited (${code ?? signal}) before it was ready:\n${out}`;
      reject(saysNoTls(out) ? new TlsUnsupported(why) : new Error(why));
    });
  });
}

/** Starts one redis-server, on a new port if the one picked was taken meanwhile. */
async function launchOnFreePort(dir: string, files: TlsFiles | undefined, password: string): Promise<TlsRedis> {
  let last: unknown;
  // The port is free when we ask and taken by redis-server a moment later: another process
  // may win that race, so a bind failure is retried on a new port.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(await freePort(), dir, files, password);
    } catch (e: unknown) {
      last = e;
      if (!(e instanceof Error) || !/Address already in use/i.test(e.message)) throw e;
    }
  }
  throw last;
}

/**
 * Our own TLS-only redis-server on 127.0.0.1, password required. Resolves once it accepts
 * connections; rejects with TlsUnsupported if this redis-server cannot do TLS.
 */
export function startTlsRedis(dir: string, files: TlsFiles, password: string): Promise<TlsRedis> {
  return launchOnFreePort(dir, files, password);
}

/** The same without TLS: a plain redis-server of our own on 127.0.0.1, password required. */
export function startPlainRedis(dir: string, password: string): Promise<TlsRedis> {
  return launchOnFreePort(dir, undefined, password);
}
