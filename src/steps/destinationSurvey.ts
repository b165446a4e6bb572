import { CommandError, StepError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import type { Podman } from '../podman/podman';
import type { ContainerInfo, PortBinding } from '../podman/parse';

/**
 * Preflight's questions to the destination, in one command: over SSH each command starts the
 * user's shell there, rc files included (0.1 s and more of CPU on the bed), and these are in
 * preflight's critical path. Is the name free, is the image there, is each published port free?
 * A port found taken here would otherwise fail podman's restore after the freeze.
 */
const SCRIPT = [
  'n=$1 i=$2 ports=$3; shift 3',
  '"$@" container exists "$n"; c=$?',
  '"$@" image exists "$i"; m=$?',
  'printf "%s %s\\n" "$c" "$m"',
  'for p in $ports; do',
  '  case $p in udp/*) f=-ulnp ;; *) f=-tlnp ;; esac',
  '  ss -H $f "sport = :${p#*/}" 2>/dev/null | while IFS= read -r l; do printf "%s %s\\n" "$p" "$l"; done',
  'done',
].join('\n');

export interface DestinationSurvey {
  clash: ContainerInfo | null;
  hasImage: boolean;
  /** Published ports something on the destination already listens on, with what `ss` says of it. */
  portsTaken: { port: PortBinding; holder: string }[];
}

export async function surveyDestination(runner: CommandRunner, podman: Podman, name: string, imageRef: string, ports: readonly PortBinding[]): Promise<DestinationSurvey> {
  // Only TCP and UDP are asked about: what ss can tell.
  const asked = ports.filter((p) => p.protocol === 'tcp' || p.protocol === 'udp');
  const argv = ['sh', '-c', SCRIPT, 'sh', name, imageRef, asked.map((p) => `${p.protocol}/${p.hostPort}`).join(' '), ...podman.command];
  const res = await runner.run(argv);
  const [first = '', ...rest] = res.stdout.split('\n');
  const codes = /^(\d+) (\d+)$/.exec(first.trim());
  if (res.code !== 0 || !codes) throw new CommandError(runner.where, argv, res.code, res.stderr + res.stdout);
  const [container, image] = [Number(codes[1]), Number(codes[2])];
  if (container > 1) throw new CommandError(runner.where, [...podman.command, 'container', 'exists', name], container, res.stderr);
  if (image > 1) throw new CommandError(runner.where, [...podman.command, 'image', 'exists', imageRef], image, res.stderr);
  const portsTaken: DestinationSurvey['portsTaken'] = [];
  for (const line of rest) {
    const m = /^(tcp|udp)\/(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const port = asked.find((p) => p.protocol === m[1] && p.hostPort === Number(m[2]) && conflicts(p.hostIp, m[3]));
    if (port && !portsTaken.some((t) => t.port === port)) portsTaken.push({ port, holder: m[3].replace(/\s+/g, ' ').trim() });
  }
  return { clash: container === 0 ? await podman.inspect(name) : null, hasImage: image === 0, portsTaken };
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '*']);

/**
 * Whether a listener (a line of `ss -H -lnp`: state, queues, local address, peer, process)
 * keeps podman from binding `hostIp`: either side on every address, or the same address.
 */
export function conflicts(hostIp: string, ssLine: string): boolean {
  const local = ssLine.trim().split(/\s+/)[3] ?? '';
  const addr = local
    .slice(0, local.lastIndexOf(':'))
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '');
  return WILDCARDS.has(hostIp) || WILDCARDS.has(addr) || addr === hostIp;
}

/** The refusal, naming each port, what holds it, and what the user can do. */
export function portsTakenError(survey: DestinationSurvey, container: string, to: string): StepError | null {
  if (survey.portsTaken.length === 0) return null;
  const which = survey.portsTaken.map((t) => `${t.port.hostIp ? `${t.port.hostIp}:` : ''}${t.port.hostPort}/${t.port.protocol} (${t.holder})`).join(', ');
  return new StepError(
    `host ${to} already listens on ${survey.portsTaken.length === 1 ? 'a port' : 'ports'} that "${container}" publishes: ${which}; free ${survey.portsTaken.length === 1 ? 'it' : 'them'} there, or migrate to another host`,
    {
      code: 'DESTINATION_PORT_TAKEN',
      permanent: true,
    },
  );
}
