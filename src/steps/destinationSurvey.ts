import { CommandError, StepError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import type { Podman } from '../podman/podman';
import type { ContainerInfo, PortBinding } from '../podman/parse';
import { markedLines } from '../exec/marked';
import { readListeners, SS_LISTENERS, ssLocal } from './hostListeners';

/**
 * Preflight's questions to the destination, in one command: over SSH each command starts the
 * user's shell there, rc files included (0.1 s and more of CPU on the bed), and these are in
 * preflight's critical path. Is the name free, is the image there, is each published port free?
 * A port found taken here would otherwise fail podman's restore after the freeze. Answers are
 * marked lines: a shell start-up that prints something must not be read as one.
 */
const SCRIPT = [
  'n=$1 i=$2 ask=$3 nets=$4; shift 4',
  '"$@" container exists "$n"; c=$?',
  '"$@" image exists "$i"; m=$?',
  'echo "ferry-survey $c $m"',
  'for k in $nets; do o=$("$@" network inspect --format "$NETWORK_FORMAT" "$k" 2>&1); echo "ferry-net $k $? $o"; done',
  '[ -n "$ask" ] || exit 0',
  ...SS_LISTENERS,
].join('\n');

export interface DestinationSurvey {
  clash: ContainerInfo | null;
  hasImage: boolean;
  /** Published ports something on the destination already listens on, with what `ss` says of it. */
  portsTaken: { port: PortBinding; holder: string }[];
  /** Set when the ports could not be checked (no `ss` there): why. */
  portsUnchecked?: string;
  /** Each network asked about: its driver and subnets there, or null when it has none by that name. */
  networks: Record<string, string | null>;
}

/** A network's driver and subnets, as `podman network inspect --format` prints them. */
export const NETWORK_FORMAT = '{{.Driver}}{{range .Subnets}} {{.Subnet}}{{end}}';

// podman's own rule for network names: nothing a shell would split or expand.
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export async function surveyDestination(runner: CommandRunner, podman: Podman, name: string, imageRef: string, ports: readonly PortBinding[], networks: readonly string[] = []): Promise<DestinationSurvey> {
  // Only TCP and UDP are asked about: what ss can tell.
  const asked = ports.filter((p) => p.protocol === 'tcp' || p.protocol === 'udp');
  const nets = networks.filter((n) => NETWORK_NAME.test(n));
  const script = `NETWORK_FORMAT='${NETWORK_FORMAT}'\n${SCRIPT}`;
  const argv = ['sh', '-c', script, 'sh', name, imageRef, asked.length > 0 ? 'ports' : '', nets.join(' '), ...podman.command];
  const res = await runner.run(argv);
  const codes = /^(\d+) (\d+)$/.exec(markedLines(res.stdout, 'ferry-survey')[0] ?? '');
  if (res.code !== 0 || !codes) throw new CommandError(runner.where, argv, res.code, res.stderr + res.stdout);
  const [container, image] = [Number(codes[1]), Number(codes[2])];
  if (container > 1) throw new CommandError(runner.where, [...podman.command, 'container', 'exists', name], container, res.stderr);
  if (image > 1) throw new CommandError(runner.where, [...podman.command, 'image', 'exists', imageRef], image, res.stderr);
  const { lines: listeners, rc: ssRc } = readListeners(res.stdout);
  const networkAnswers: DestinationSurvey['networks'] = {};
  for (const line of markedLines(res.stdout, 'ferry-net')) {
    const m = /^(\S+) (\d+) ?(.*)$/.exec(line);
    if (m) networkAnswers[m[1]] = m[2] === '0' ? m[3].trim() : null;
  }
  const survey: DestinationSurvey = { clash: container === 0 ? await podman.inspect(name) : null, hasImage: image === 0, portsTaken: [], networks: networkAnswers };
  if (asked.length === 0) return survey;
  if (ssRc !== '0') return { ...survey, portsUnchecked: `\`ss -Htulnp\` exited ${ssRc}: ${listeners.join(' ').trim().slice(0, 200)}` };
  for (const port of asked) {
    const holder = listeners.find((l) => holds(l, port));
    if (holder) survey.portsTaken.push({ port, holder: holder.replace(/\s+/g, ' ').trim() });
  }
  return survey;
}

/**
 * Whether a line of `ss -Htulnp` (netid, state, queues, local address:port, peer, process) is a
 * listener that keeps podman from binding `port`: same protocol and port, the same address
 * family, and either side on every address of it or both on the same one. ss writes `*` for a
 * socket on every address of both families, `[::]` for IPv6 only and `0.0.0.0` for IPv4 only;
 * podman binds a port published without an address on IPv4's every address.
 */
export function holds(ssLine: string, port: PortBinding): boolean {
  const local = ssLocal(ssLine);
  if (local?.protocol !== port.protocol || local.port !== port.hostPort) return false;
  const addr = bare(local.addr);
  if (addr === '*') return true;
  const want = bare(port.hostIp);
  if (family(want) !== family(addr)) return false;
  return WILDCARDS.has(want) || WILDCARDS.has(addr) || addr === want;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::']);

function family(a: string): 4 | 6 {
  return a.includes(':') ? 6 : 4;
}

/** An address as ss or podman may write it, without scope, brackets or IPv4-mapped prefix. */
function bare(a: string): string {
  return a
    .replace(/%[^\]]*$/, '')
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '')
    .replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

/** The networks' driver and subnets on this host (the source: a local command each). */
export async function describeNetworks(runner: CommandRunner, podman: Podman, networks: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const net of networks.filter((n) => NETWORK_NAME.test(n))) {
    const argv = [...podman.command, 'network', 'inspect', '--format', NETWORK_FORMAT, net];
    const res = await runner.run(argv);
    if (res.code !== 0) throw new CommandError(runner.where, argv, res.code, res.stderr);
    out[net] = res.stdout.trim();
  }
  return out;
}

/**
 * checkpoint.keepAddress restores the container with its own address, which only works on the
 * same network: one of that name on the destination, with the same driver and subnets (else
 * podman's restore fails after the freeze). Whether the network really spans both hosts is the
 * user's word (a bridge may or may not); that it exists alike on both is checked here.
 */
export function keepAddressError(survey: DestinationSurvey, source: Record<string, string>, container: string, from: string, to: string): StepError | null {
  const problems: string[] = [];
  for (const [net, here] of Object.entries(source)) {
    const there = survey.networks[net];
    if (there === undefined || there === null) problems.push(`host ${to} has no network "${net}"`);
    else if (there !== here) problems.push(`network "${net}" is ${there} on host ${to} but ${here} on host ${from}`);
  }
  if (problems.length === 0) return null;
  return new StepError(
    `checkpoint.keepAddress is on, so "${container}" would keep its address on host ${to}, but ${problems.join('; ')}: create the network on ${to} with the same driver and subnet (podman network create), or turn checkpoint.keepAddress off`,
    {
      code: 'KEEP_ADDRESS_NETWORK',
      permanent: true,
    },
  );
}

/**
 * The refusal, naming each port, what holds it, and what the user can do. `hostNetwork`: the
 * container is on the host's network, so the ports are the ones it listens on.
 */
export function portsTakenError(survey: DestinationSurvey, container: string, to: string, hostNetwork = false): StepError | null {
  if (survey.portsTaken.length === 0) return null;
  const which = survey.portsTaken.map((t) => `${t.port.hostIp ? `${t.port.hostIp}:` : ''}${t.port.hostPort}/${t.port.protocol} (${t.holder})`).join(', ');
  const one = survey.portsTaken.length === 1;
  const what = hostNetwork ? `"${container}" listens on through the host's network (--network host)` : `"${container}" publishes`;
  return new StepError(`host ${to} already listens on ${one ? 'a port' : 'ports'} that ${what}: ${which}; free ${one ? 'it' : 'them'} there, or migrate to another host`, {
    code: 'DESTINATION_PORT_TAKEN',
    permanent: true,
  });
}
