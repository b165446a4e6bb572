import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthProbe } from '../engine/model';
import type { Podman } from '../podman/podman';

export interface ProbeTarget {
  address: string;
  container: string;
  podman: Podman;
  /** Host ports the container publishes, used by the 'auto' probe. */
  ports: { hostPort: number; protocol: string }[];
}

function httpGet(address: string, port: number, path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ host: address, port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? null : `HTTP ${code}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
}

function tcpConnect(address: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = connect({ host: address, port, timeout: timeoutMs });
    sock.once('connect', () => {
      sock.destroy();
      resolve(null);
    });
    sock.once('timeout', () => {
      sock.destroy();
      resolve(`no connection within ${timeoutMs} ms`);
    });
    sock.once('error', (e) => resolve(e.message));
  });
}

const PROBE_KINDS = new Set(['none', 'auto', 'http', 'tcp', 'exec']);

/**
 * Why a probe from a record cannot be run, or null. Records come from Redis: a probe of a
 * kind this worker does not know must fail verify, never pass it.
 */
export function probeProblem(probe: unknown): string | null {
  const kind = typeof probe === 'object' && probe !== null ? (probe as { kind?: unknown }).kind : undefined;
  if (typeof kind !== 'string' || !PROBE_KINDS.has(kind)) return `unknown health probe ${JSON.stringify(probe)?.slice(0, 80)}: this worker knows ${[...PROBE_KINDS].join(', ')}`;
  const p = probe as Record<string, unknown>;
  const port = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
  if ((kind === 'http' || kind === 'tcp') && !port(p.port)) return `health probe ${kind} has no valid port`;
  if (kind === 'http' && (typeof p.path !== 'string' || !p.path.startsWith('/'))) return 'health probe http has no valid path';
  if (kind === 'exec' && (!Array.isArray(p.argv) || p.argv.length === 0 || !p.argv.every((a) => typeof a === 'string'))) return 'health probe exec has no command';
  return null;
}

/** One try of the probe: null when healthy, else what went wrong. */
export async function probeOnce(probe: HealthProbe, t: ProbeTarget, timeoutMs: number): Promise<string | null> {
  switch (probe.kind) {
    case 'none':
      return null;
    case 'http': {
      const err = await httpGet(t.address, probe.port, probe.path, timeoutMs);
      return err && `GET http://${t.address}:${probe.port}${probe.path}: ${err}`;
    }
    case 'tcp': {
      const err = await tcpConnect(t.address, probe.port, timeoutMs);
      return err && `TCP ${t.address}:${probe.port}: ${err}`;
    }
    case 'exec': {
      const res = await t.podman.execIn(t.container, probe.argv, timeoutMs);
      return res.code === 0 ? null : `\`${probe.argv.join(' ')}\` in ${t.container} exited with ${res.code}`;
    }
    case 'auto': {
      for (const p of t.ports.filter((x) => x.protocol === 'tcp')) {
        const err = await tcpConnect(t.address, p.hostPort, timeoutMs);
        if (err) return `TCP ${t.address}:${p.hostPort} (published port): ${err}`;
      }
      return null;
    }
    default:
      // Fail closed: a probe nobody can run proves nothing.
      return probeProblem(probe) ?? 'unknown health probe';
  }
}

/** Tries the probe until it passes or the time is up; returns how long it took, or throws. */
export async function waitHealthy(probe: HealthProbe, t: ProbeTarget, opts: { timeoutMs: number; intervalMs: number }): Promise<{ ms: number; tries: number }> {
  const start = Date.now();
  let tries = 0;
  for (;;) {
    tries++;
    const err = await probeOnce(probe, t, Math.min(5000, opts.timeoutMs));
    if (!err) return { ms: Date.now() - start, tries };
    if (Date.now() - start + opts.intervalMs > opts.timeoutMs) {
      throw new Error(`health probe still failing after ${Date.now() - start} ms (${tries} tries): ${err}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
}
