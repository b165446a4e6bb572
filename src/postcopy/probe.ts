import type { CommandRunner } from '../exec/runner';

/** CRIU's page server sizes a pipe to 819 pages, which the kernel rounds up to 4 MiB. */
export const PIPE_SIZE_NEEDED = 4 * 1024 * 1024;
const CAP_SYS_RESOURCE = 24n;
/** The oldest CRIU post-copy through podman was proved with (lazy page server with loopback address, uffd-noncoop). */
const MIN_CRIU: [number, number] = [4, 2];

export type LazyRole = 'source' | 'destination';

export interface LazySupport {
  /** True when this host can take its part in a post-copy migration. */
  ok: boolean;
  /** Why not, one sentence each (empty when ok). */
  reasons: string[];
  criuVersion?: string;
  runc?: string;
  /** podman's default OCI runtime name on this host. */
  runtime?: string;
  uffdNoncoop: boolean;
  runcLazyPages: boolean;
  /** Source: the page server's 4 MiB pipe is allowed as things stand. */
  pipeOk: boolean;
  /** Source: it is not, but Ferry may raise fs.pipe-max-size for the migration (and put it back). */
  pipeRaisable: boolean;
  pipeMaxSize?: number;
}

const FACTS = [
  'echo "criu=$(command -v criu)"',
  'echo "criuVersion=$(criu --version 2>/dev/null | sed -n "s/^Version: *//p")"',
  'criu check --feature uffd-noncoop >/dev/null 2>&1; echo "uffd=$?"',
  'echo "runc=$(command -v runc)"',
  'runc restore --help 2>/dev/null | grep -q -- --lazy-pages; echo "runcLazy=$?"',
  'echo "runtime=$(podman info --format "{{.Host.OCIRuntime.Name}}" 2>/dev/null)"',
  'echo "pipeMax=$(cat /proc/sys/fs/pipe-max-size 2>/dev/null)"',
  'echo "capEff=$(sed -n "s/^CapEff:[[:space:]]*//p" /proc/self/status)"',
  '[ -w /proc/sys/fs/pipe-max-size ]; echo "pipeWritable=$?"',
  'command -v setsid >/dev/null; echo "setsid=$?"',
  'command -v ssh >/dev/null; echo "ssh=$?"',
  'if [ -n "$1" ]; then [ -x "$1" ] && [ -f "$2" ]; echo "split=$?"; fi',
].join('\n');

/** key=value lines; a key whose value is empty is absent. */
function parseFacts(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    const value = line.slice(i + 1).trim();
    if (i > 0 && value) m.set(line.slice(0, i), value);
  }
  return m;
}

function versionAtLeast(v: string, min: [number, number]): boolean {
  const [a, b] = v.split('.').map(Number);
  if (!Number.isFinite(a)) return false;
  return a > min[0] || (a === min[0] && (Number.isFinite(b) ? b : 0) >= min[1]);
}

/**
 * What preflight must know before choosing post-copy, asked in one command per host: userfaultfd
 * in CRIU's non-cooperative mode, a CRIU post-copy was proved with, runc with --lazy-pages, runc
 * as podman's runtime, and on the source the page server's pipe size, node with Ferry's split
 * script (`split`: node and script paths on that host), setsid and ssh.
 */
export async function probeLazySupport(runner: CommandRunner, role: LazyRole, split?: { node: string; script: string }): Promise<LazySupport> {
  const res = await runner.run(['sh', '-c', FACTS, 'ferry-lazy-probe', split?.node ?? '', split?.script ?? ''], { timeoutMs: 60_000 });
  const f = parseFacts(res.stdout);
  const reasons: string[] = [];
  const criuVersion = f.get('criuVersion');
  const uffdNoncoop = f.get('uffd') === '0';
  const runcLazyPages = f.get('runcLazy') === '0';
  const runtime = f.get('runtime');
  const pipeMax = Number(f.get('pipeMax'));
  const pipeMaxSize = Number.isFinite(pipeMax) && pipeMax > 0 ? pipeMax : undefined;
  const capEff = BigInt(`0x${f.get('capEff') ?? '0'}`);
  const hasCapResource = ((capEff >> CAP_SYS_RESOURCE) & 1n) === 1n;
  const pipeOk = hasCapResource || (pipeMaxSize ?? 0) >= PIPE_SIZE_NEEDED;
  const pipeRaisable = !pipeOk && f.get('pipeWritable') === '0';
  if (res.code !== 0) reasons.push(`the probe itself failed on ${runner.where} (exit ${res.code ?? 'signal'}): ${res.stderr.trim().slice(0, 200)}`);
  if (!f.get('criu')) reasons.push('criu is not on PATH');
  else if (!criuVersion || !versionAtLeast(criuVersion, MIN_CRIU)) reasons.push(`CRIU ${criuVersion ?? '(unknown version)'} is older than ${MIN_CRIU.join('.')}, the first post-copy was proved with`);
  if (!uffdNoncoop) reasons.push('the kernel or CRIU lacks non-cooperative userfaultfd (`criu check --feature uffd-noncoop` fails)');
  if (!f.get('runc')) reasons.push('runc is not on PATH');
  else if (!runcLazyPages) reasons.push('runc has no --lazy-pages');
  if (runtime !== 'runc') reasons.push(`podman's runtime is ${runtime ?? 'unknown'}, not runc (the lazy-pages wrapper wraps runc only)`);
  if (f.get('setsid') !== '0') reasons.push('setsid is missing');
  if (role === 'source') {
    if (!pipeOk && !pipeRaisable) reasons.push(`fs.pipe-max-size is ${pipeMaxSize ?? 'unknown'} (CRIU's page server needs ${PIPE_SIZE_NEEDED}) and CAP_SYS_RESOURCE is missing`);
    if (f.get('ssh') !== '0') reasons.push('the OpenSSH client (ssh) is missing: it carries the pages to the destination');
    if (split && f.get('split') !== '0') reasons.push(`node (${split.node}) or Ferry's split script (${split.script}) is missing`);
  }
  return { ok: reasons.length === 0, reasons, criuVersion, runc: f.get('runc'), runtime, uffdNoncoop, runcLazyPages, pipeOk, pipeRaisable, pipeMaxSize };
}
