import { strict as assert } from 'node:assert';
import type { CommandResult, CommandRunner } from '../../src/exec/runner';
import { Podman } from '../../src/podman/podman';
import type { PortBinding } from '../../src/podman/parse';
import { holds, keepAddressError, portsTakenError, surveyDestination } from '../../src/steps/destinationSurvey';

// Recorded on the bed (iproute2 6.1, `ss -Htulnp`): the ports podman reserves for a container's
// -p through conmon, and a service of the host.
const TCP_ANY = 'tcp   LISTEN 0      4096   0.0.0.0:18555 0.0.0.0:* users:(("conmon",pid=7704,fd=5))';
const UDP_LOOPBACK = 'udp   UNCONN 0      0      127.0.0.1:18556 0.0.0.0:* users:(("conmon",pid=7704,fd=6))';
const TCP_ONE_ADDRESS = 'tcp LISTEN 0      511    198.18.0.1:6390 0.0.0.0:* users:(("redis-server",pid=29694,fd=7))';
const TCP6_ONLY = 'tcp   LISTEN 0      4096      [::]:18555    [::]:* users:(("nginx",pid=42,fd=6))';
const TCP_BOTH = 'tcp   LISTEN 0      4096         *:18558       *:* users:(("node",pid=43,fd=18))';
const TCP6_SCOPED = 'tcp   LISTEN 0      4096      [fe80::1]%eth0:18557    [::]:*';

const port = (protocol: string, hostPort: number, hostIp = ''): PortBinding => ({ containerPort: 8080, protocol, hostIp, hostPort });

function answering(stdout: string, code = 0): CommandRunner & { argv?: readonly string[] } {
  const r: CommandRunner & { argv?: readonly string[] } = {
    where: 'host b',
    run(argv): Promise<CommandResult> {
      r.argv = argv;
      return Promise.resolve({ code, stdout, stderr: '' });
    },
  };
  return r;
}

describe("preflight's survey of the destination", () => {
  it('a listener holds a port when protocol and port match and either side binds every address, or both the same one', () => {
    assert.equal(holds(TCP_ANY, port('tcp', 18555)), true);
    assert.equal(holds(TCP_ANY, port('tcp', 18555, '198.18.0.12')), true, 'podman cannot bind one address while another socket holds them all');
    assert.equal(holds(TCP_ANY, port('udp', 18555)), false, 'another protocol');
    assert.equal(holds(TCP_ANY, port('tcp', 1855)), false, 'another port');
    assert.equal(holds(UDP_LOOPBACK, port('udp', 18556)), true);
    assert.equal(holds(UDP_LOOPBACK, port('udp', 18556, '127.0.0.1')), true);
    assert.equal(holds(UDP_LOOPBACK, port('udp', 18556, '198.18.0.12')), false, 'another address of the host is free');
    assert.equal(holds(TCP_ONE_ADDRESS, port('tcp', 6390, '::ffff:198.18.0.1')), true, 'an IPv4-mapped address is the same address');
    assert.equal(holds(TCP6_ONLY, port('tcp', 18555)), false, 'an IPv6-only socket leaves IPv4 free');
    assert.equal(holds(TCP6_ONLY, port('tcp', 18555, '::')), true);
    assert.equal(holds(TCP6_ONLY, port('tcp', 18555, 'fd00::5')), true);
    assert.equal(holds(TCP_ANY, port('tcp', 18555, 'fd00::5')), false, 'an IPv4-only socket leaves IPv6 free');
    assert.equal(holds(TCP_BOTH, port('tcp', 18558, '198.18.0.12')), true, 'both families');
    assert.equal(holds(TCP_BOTH, port('tcp', 18558, 'fd00::5')), true);
    assert.equal(holds(TCP6_SCOPED, port('tcp', 18557, 'fe80::1')), true, 'a scoped address is read without its scope');
    assert.equal(holds(TCP6_SCOPED, port('tcp', 18557, 'fe80::2')), false);
  });

  it('reads the name, the image and the taken ports from one command, and names what holds them', async () => {
    const out = ['(a login banner a shell start-up printed)', 'ferry-survey 1 0', `ferry-ss ${TCP_ANY}`, `ferry-ss ${TCP_ONE_ADDRESS}`, 'ferry-ss-rc 0', ''].join('\n');
    const runner = answering(out);
    const survey = await surveyDestination(runner, new Podman(runner, ['sudo', '-n', 'podman']), 'web', 'sha256:abc', [port('tcp', 18555), port('udp', 18553), port('tcp', 6390, '10.0.0.5')]);
    assert.equal(survey.clash, null);
    assert.equal(survey.hasImage, true);
    assert.deepEqual(
      survey.portsTaken.map((t) => t.port.hostPort),
      [18555],
    );
    assert.deepEqual(runner.argv?.slice(-3), ['sudo', '-n', 'podman'], 'podman is started as the host is configured');
    const err = portsTakenError(survey, 'web', 'b');
    assert.match(err?.message ?? '', /host b already listens on a port that "web" publishes: 18555\/tcp \(tcp LISTEN .*conmon.*\); free it there, or migrate to another host/);
    assert.equal(err?.code, 'DESTINATION_PORT_TAKEN');
  });

  it('says when the ports could not be checked instead of calling them free', async () => {
    const runner = answering('ferry-survey 1 0\nferry-ss sh: 1: ss: not found\nferry-ss-rc 127\n');
    const survey = await surveyDestination(runner, new Podman(runner, ['podman']), 'web', 'x', [port('tcp', 80)]);
    assert.deepEqual(survey.portsTaken, []);
    assert.match(survey.portsUnchecked ?? '', /exited 127: sh: 1: ss: not found/);
  });

  it('fails when the destination cannot answer, rather than read silence as "free"', async () => {
    const runner = answering('', 127);
    await assert.rejects(surveyDestination(runner, new Podman(runner, ['podman']), 'web', 'x', []), /exited with 127|127/);
  });
});

describe('keeping the address: the same network on both hosts', () => {
  it('reads each network the destination was asked about, and refuses one it lacks or defines otherwise', async () => {
    const out = ['ferry-survey 1 0', 'ferry-net span 0 macvlan 198.18.0.0/24', 'ferry-net other 0 bridge 10.9.0.0/24', 'ferry-net gone 125 Error: network gone: unable to find network with name or ID gone: network not found', ''].join('\n');
    const runner = answering(out);
    const survey = await surveyDestination(runner, new Podman(runner, ['podman']), 'web', 'x', [], ['span', 'other', 'gone', 'bad name;rm']);
    assert.deepEqual(survey.networks, { span: 'macvlan 198.18.0.0/24', other: 'bridge 10.9.0.0/24', gone: null });
    assert.equal(runner.argv?.[7], 'span other gone', 'a name podman could not have made is not asked about');
    assert.equal(keepAddressError(survey, { span: 'macvlan 198.18.0.0/24' }, 'web', 'a', 'b'), null);
    const err = keepAddressError(survey, { span: 'macvlan 198.18.0.0/24', other: 'bridge 10.8.0.0/24', gone: 'bridge 10.7.0.0/24' }, 'web', 'a', 'b');
    assert.equal(err?.code, 'KEEP_ADDRESS_NETWORK');
    assert.match(err?.message ?? '', /network "other" is bridge 10\.9\.0\.0\/24 on host b but bridge 10\.8\.0\.0\/24 on host a; host b has no network "gone": create the network on b/);
  });
});
