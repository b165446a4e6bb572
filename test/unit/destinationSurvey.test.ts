import { strict as assert } from 'node:assert';
import type { CommandResult, CommandRunner } from '../../src/exec/runner';
import { Podman } from '../../src/podman/podman';
import { conflicts, portsTakenError, surveyDestination } from '../../src/steps/destinationSurvey';

// Recorded on the bed (iproute2 6.1): the ports podman reserves for a container's -p through conmon.
const TCP_ANY = 'LISTEN 0      4096   0.0.0.0:18555 0.0.0.0:* users:(("conmon",pid=7704,fd=5))';
const UDP_LOOPBACK = 'UNCONN 0      0      127.0.0.1:18556 0.0.0.0:* users:(("conmon",pid=7704,fd=6))';
const TCP6_ANY = 'LISTEN 0      4096      [::]:18555    [::]:* users:(("nginx",pid=42,fd=6))';

function answering(stdout: string): CommandRunner & { argv?: readonly string[] } {
  const r: CommandRunner & { argv?: readonly string[] } = {
    where: 'host b',
    run(argv): Promise<CommandResult> {
      r.argv = argv;
      return Promise.resolve({ code: 0, stdout, stderr: '' });
    },
  };
  return r;
}

describe("preflight's survey of the destination", () => {
  it('a listener conflicts when either side binds every address, or both the same one', () => {
    assert.equal(conflicts('', TCP_ANY), true);
    assert.equal(conflicts('198.18.0.12', TCP_ANY), true, 'podman cannot bind one address while another socket holds them all');
    assert.equal(conflicts('', UDP_LOOPBACK), true);
    assert.equal(conflicts('127.0.0.1', UDP_LOOPBACK), true);
    assert.equal(conflicts('198.18.0.12', UDP_LOOPBACK), false, 'another address of the host is free');
    assert.equal(conflicts('198.18.0.12', TCP6_ANY), true);
  });

  it('reads the name, the image and the taken ports from one command, and names what holds them', async () => {
    const runner = answering(`1 0\ntcp/18555 ${TCP_ANY}\n`);
    const ports = [
      { containerPort: 8080, protocol: 'tcp', hostIp: '', hostPort: 18555 },
      { containerPort: 53, protocol: 'udp', hostIp: '', hostPort: 18553 },
    ];
    const survey = await surveyDestination(runner, new Podman(runner, ['podman']), 'web', 'sha256:abc', ports);
    assert.equal(survey.clash, null);
    assert.equal(survey.hasImage, true);
    assert.deepEqual(
      survey.portsTaken.map((t) => t.port.hostPort),
      [18555],
    );
    assert.equal(runner.argv?.[6], 'tcp/18555 udp/18553', 'each published port is asked about');
    const err = portsTakenError(survey, 'web', 'b');
    assert.match(err?.message ?? '', /host b already listens on a port that "web" publishes: 18555\/tcp \(LISTEN .*conmon.*\); free it there, or migrate to another host/);
    assert.equal(err?.code, 'DESTINATION_PORT_TAKEN');
  });

  it('fails when the destination cannot answer, rather than read silence as "free"', async () => {
    const runner: CommandRunner = { where: 'host b', run: () => Promise.resolve({ code: 127, stdout: '', stderr: 'sh: not found' }) };
    await assert.rejects(surveyDestination(runner, new Podman(runner, ['podman']), 'web', 'x', []), /not found/);
  });
});
