import { CommandError } from '../errors';
import { markedLines } from '../exec/marked';
import type { CommandRunner } from '../exec/runner';
import type { Podman } from '../podman/podman';
import type { PortBinding } from '../podman/parse';

/** Shell lines that print every listening TCP and UDP socket with its owners, marked, then ss's exit code. */
export const SS_LISTENERS = ['out=$(ss -Htulnp 2>&1); r=$?', 'printf "%s\\n" "$out" | sed "s/^/ferry-ss /"', 'echo "ferry-ss-rc $r"'];

/**
 * A line of `ss -Htulnp` (netid, state, queues, local address:port, peer, process): its
 * protocol and local address (brackets off; `*` is every address of both families) and port.
 * Null when it has no port to read.
 */
export function ssLocal(ssLine: string): { protocol: string; addr: string; port: number } | null {
  const f = ssLine.trim().split(/\s+/);
  const local = f[4] ?? '';
  const at = local.lastIndexOf(':');
  const port = Number(local.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port <= 0) return null;
  return { protocol: f[0], addr: local.slice(0, at).replace(/^\[|\]$/g, ''), port };
}

/** What SS_LISTENERS printed: the lines of `ss`, and its exit code ('?' when it said none). */
export function readListeners(output: string): { lines: string[]; rc: string } {
  return { lines: markedLines(output, 'ferry-ss'), rc: markedLines(output, 'ferry-ss-rc')[0] ?? '?' };
}

/**
 * A container on the host's network (--network host) publishes no port: its processes listen
 * on the host's own addresses, and CRIU binds the same ones on the destination during the
 * restore, after the freeze. Which ones they are is asked of the source in one command: the
 * container's processes (`podman top … hpid`) and every listening socket with its owners.
 */
const SCRIPT = ['n=$1; shift', 'p=$("$@" top "$n" hpid) || exit 3', 'echo "ferry-pids $(printf "%s\\n" "$p" | tail -n +2 | tr "\\n" " ")"', ...SS_LISTENERS].join('\n');

export interface HostListeners {
  listeners: PortBinding[];
  /** Set when they could not be read (no `ss` on the source): why. */
  unchecked?: string;
}

export async function hostNetworkListeners(runner: CommandRunner, podman: Podman, name: string): Promise<HostListeners> {
  const argv = ['sh', '-c', SCRIPT, 'sh', name, ...podman.command];
  const res = await runner.run(argv);
  const pids = markedLines(res.stdout, 'ferry-pids')[0];
  if (res.code !== 0 || pids === undefined) throw new CommandError(runner.where, argv, res.code, res.stderr + res.stdout);
  const { lines, rc } = readListeners(res.stdout);
  if (rc !== '0') return { listeners: [], unchecked: `\`ss -Htulnp\` exited ${rc} on the source: ${lines.join(' ').trim().slice(0, 200)}` };
  return { listeners: listenersOf(lines, new Set(pids.split(/\s+/).filter(Boolean).map(Number))) };
}

/**
 * The TCP and UDP sockets, among lines of `ss -Htulnp`, that one of `pids` listens on, as the
 * ports they hold. ss writes `*` for a socket on every address of both families: that holds
 * IPv4's and IPv6's every address.
 */
export function listenersOf(ssLines: readonly string[], pids: ReadonlySet<number>): PortBinding[] {
  const out: PortBinding[] = [];
  const seen = new Set<string>();
  for (const line of ssLines) {
    const local = ssLocal(line);
    if (!local || (local.protocol !== 'tcp' && local.protocol !== 'udp')) continue;
    const owners = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    if (!owners.some((p) => pids.has(p))) continue;
    const { protocol, addr, port } = local;
    for (const hostIp of addr === '*' ? ['0.0.0.0', '::'] : [addr]) {
      const key = `${protocol} ${hostIp} ${port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ containerPort: port, protocol, hostIp, hostPort: port });
    }
  }
  return out;
}
