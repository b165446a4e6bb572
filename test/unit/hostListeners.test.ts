import { strict as assert } from 'node:assert';
import { holds } from '../../src/steps/destinationSurvey';
import { listenersOf } from '../../src/steps/hostListeners';

// Recorded on bed host i (2026-12-03): `podman top hn-rec hpid` and `ss -Htulnp` for a busybox
// container run with --network host, `httpd -f -p 8099` and `httpd -f -p 127.0.0.1:8097` in it,
// beside the host's own sshd and two post-copy tunnels' remote forwards.
const PIDS = new Set([15624, 15660, 15662]);
const SS = [
  'tcp LISTEN 0      128      127.0.0.1:31792 0.0.0.0:* users:(("sshd",pid=31066,fd=5)) ',
  'tcp LISTEN 0      128      127.0.0.1:20061 0.0.0.0:* users:(("sshd",pid=14200,fd=5)) ',
  'tcp LISTEN 0      128    198.18.0.19:22    0.0.0.0:* users:(("sshd",pid=15187,fd=4)) ',
  'tcp LISTEN 0      128      127.0.0.1:23445 0.0.0.0:* users:(("sshd",pid=20030,fd=5)) ',
  'tcp LISTEN 0      9        127.0.0.1:8097  0.0.0.0:* users:(("httpd",pid=15662,fd=3))',
  'tcp LISTEN 0      9                *:8099        *:* users:(("httpd",pid=15660,fd=3))',
];

describe('preflight: the ports a container on the host network holds', () => {
  it("are its processes' listeners, and `*` holds both families' every address", () => {
    assert.deepEqual(listenersOf(SS, PIDS), [
      { containerPort: 8097, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8097 },
      { containerPort: 8099, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8099 },
      { containerPort: 8099, protocol: 'tcp', hostIp: '::', hostPort: 8099 },
    ]);
  });

  it('a socket shared by several processes counts once, and a process not in the container counts not', () => {
    const shared = 'udp UNCONN 0 0 [::]:5353 [::]:* users:(("a",pid=7,fd=3),("b",pid=15660,fd=3),("c",pid=15662,fd=4))';
    assert.deepEqual(listenersOf([shared, shared], PIDS), [{ containerPort: 5353, protocol: 'udp', hostIp: '::', hostPort: 5353 }]);
    assert.deepEqual(listenersOf(['tcp LISTEN 0 9 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=99,fd=6))', 'tcp LISTEN 0 9 0.0.0.0:81 0.0.0.0:*'], PIDS), []);
  });

  it("each is refused by what the destination's ss shows on the same port, as a published one is", () => {
    const [loop, any4, any6] = listenersOf(SS, PIDS);
    assert.equal(holds('tcp LISTEN 0 511 0.0.0.0:8097 0.0.0.0:* users:(("nginx",pid=1,fd=6))', loop), true, 'every IPv4 address covers loopback');
    assert.equal(holds('tcp LISTEN 0 511 127.0.0.2:8097 0.0.0.0:*', loop), false, 'another address');
    assert.equal(holds('tcp LISTEN 0 511 [::]:8099 [::]:*', any4), false, 'IPv6 only leaves IPv4 free');
    assert.equal(holds('tcp LISTEN 0 511 [::]:8099 [::]:*', any6), true);
    assert.equal(holds('tcp LISTEN 0 511 10.0.0.1:8099 0.0.0.0:*', any4), true, 'one address of every one');
  });
});
