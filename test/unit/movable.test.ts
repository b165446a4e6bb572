import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { ContainerInfo, parseInspect, parsePodList } from '../../src/podman/parse';
import { declaredCopiedMounts, declaredSharedMounts, movabilityProblems } from '../../src/steps/movable';
import { mountedVolumes } from '../../src/steps/volumes';
import { parseVolumeInspect } from '../../src/podman/volumes';

// Recorded on the bed with podman 4.3.1 (test/fixtures/inspect-*.json, pod-ps.json).
const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures');
const inspect = (name: string): ContainerInfo => parseInspect(readFileSync(join(FIXTURES, `inspect-${name}.json`), 'utf8'));

interface Settings {
  tcpEstablished: boolean;
  keepAddress: boolean;
  sharedMounts: string[];
  copyMounts: string[];
}
const cfg = (over: Partial<Settings> = {}) => ({ checkpoint: { tcpEstablished: false, keepAddress: false, sharedMounts: [], copyMounts: [], ...over } });
const codes = (info: ContainerInfo, over: Partial<Settings> = {}, labels?: Record<string, string>) => movabilityProblems(info, cfg(over), labels).map((p) => p.code);

describe('podman inspect: mounts, pod, network', () => {
  it('reads a bind mount, a named volume, a tmpfs and the network mode', () => {
    assert.deepEqual(inspect('bind').mounts, [{ type: 'bind', source: '/srv/h12a-bind', destination: '/data', volumeName: '', readOnly: false }]);
    assert.deepEqual(inspect('volume').mounts, [{ type: 'volume', source: '/var/lib/containers/storage/volumes/h12a5411-data/_data', destination: '/data', volumeName: 'h12a5411-data', readOnly: false }]);
    assert.deepEqual(inspect('tmpfs').mounts, [{ type: 'tmpfs', source: '', destination: '/scratch', volumeName: '', readOnly: false }]);
    assert.equal(inspect('bind').networkMode, 'bridge');
    assert.equal(inspect('host-network').networkMode, 'host');
    assert.deepEqual(inspect('host-network').mounts, []);
  });

  it('reads pod membership and the infra container', () => {
    const member = inspect('pod-member');
    const infra = inspect('pod-infra');
    assert.equal(member.pod, 'fc6c4f224529a2bf74bc04791c7260775689ae93b1b4f82eea605e99399fb01e');
    assert.equal(member.infra, false);
    assert.match(member.networkMode, /^container:7aaaf8078261/);
    assert.deepEqual(member.dependencies, ['7aaaf807826158f3f6914908adb71e4e6853a668467e771dab80cc3dd1ef20a6']);
    assert.equal(infra.pod, member.pod);
    assert.equal(infra.infra, true);
    assert.deepEqual(infra.dependencies, []);
    const standalone = inspect('bind');
    assert.equal(standalone.pod, '');
    assert.equal(standalone.infra, false);
  });

  it('reads `podman pod ps --format json`', () => {
    const [pod] = parsePodList(readFileSync(join(FIXTURES, 'pod-ps.json'), 'utf8'));
    assert.equal(pod.name, 'h12a5411-pod');
    assert.equal(pod.infraId, '7aaaf807826158f3f6914908adb71e4e6853a668467e771dab80cc3dd1ef20a6');
    assert.deepEqual(
      pod.members.map((m) => m.name),
      ['h12a5411-member', 'fc6c4f224529-infra'],
    );
    assert.deepEqual(parsePodList(''), []);
  });
});

describe('what can move (movabilityProblems)', () => {
  it('lets a plain container, a tmpfs and the host network through', () => {
    assert.deepEqual(codes(inspect('tmpfs')), []);
    assert.deepEqual(codes(inspect('host-network')), []);
  });

  it('refuses a bind mount that is not declared shared, naming it and the ways out', () => {
    const [p, ...rest] = movabilityProblems(inspect('bind'), cfg());
    assert.equal(rest.length, 0);
    assert.equal(p.code, 'BIND_MOUNT_NOT_SHARED');
    assert.match(p.message, /bind mount \/srv\/h12a-bind \(at \/data in the container\)/);
    assert.match(p.message, /label ferry\.shared-mounts=\/data/);
    assert.match(p.message, /checkpoint\.sharedMounts/);
  });

  it('accepts a bind mount declared shared by label (destination) or config (host folder, or one above it)', () => {
    const info = inspect('bind');
    assert.deepEqual(codes(info, {}, { 'ferry.shared-mounts': '/other, /data/' }), []);
    assert.deepEqual(codes(info, { sharedMounts: ['/srv/h12a-bind'] }), []);
    assert.deepEqual(codes(info, { sharedMounts: ['/srv/'] }), []);
    assert.deepEqual(codes(info, { sharedMounts: ['/srv/h12a'] }), ['BIND_MOUNT_NOT_SHARED'], 'a sibling with a common prefix is not below it');
    assert.deepEqual(
      declaredSharedMounts(info, cfg({ sharedMounts: ['/srv'] })).map((m) => m.source),
      ['/srv/h12a-bind'],
    );
    assert.deepEqual(declaredSharedMounts(info, cfg()), []);
  });

  it('a bind mount declared copied (label or config folder) is not refused; shared wins over copied', () => {
    const info = inspect('bind');
    const [m] = info.mounts;
    assert.deepEqual(codes(info), ['BIND_MOUNT_NOT_SHARED']);
    assert.match(movabilityProblems(info, cfg())[0].message, /ferry\.copy-mounts=\/data/);
    assert.deepEqual(codes(info, {}, { 'ferry.copy-mounts': m.destination }), []);
    assert.deepEqual(declaredCopiedMounts(info, cfg(), { 'ferry.copy-mounts': m.destination }), [m]);
    assert.deepEqual(codes(info, { copyMounts: [m.source] }), []);
    assert.deepEqual(declaredCopiedMounts(info, cfg({ copyMounts: [m.source], sharedMounts: [m.source] })), [], 'a folder both hosts see is not copied');
  });

  it('leaves a named volume to the volume checks (Ferry moves volumes), even one whose folder is declared shared', () => {
    assert.deepEqual(codes(inspect('volume')), []);
    assert.deepEqual(movabilityProblems(inspect('volume'), cfg({ sharedMounts: ['/var/lib/containers'] }), { 'ferry.shared-mounts': '/data' }), []);
    assert.deepEqual(mountedVolumes(inspect('volume')), ['h12a5411-data']);
    assert.deepEqual(mountedVolumes(inspect('bind')), []);
  });

  it('refuses a pod member and a pod infra container, naming the pod', () => {
    const member = { ...inspect('pod-member'), podName: 'web-pod' };
    assert.deepEqual(codes(member), ['POD_MEMBER'], 'the infra dependency is the pod, not a second problem');
    assert.match(movabilityProblems(member, cfg())[0].message, /member of pod web-pod \(fc6c4f224529\).*Ferry cannot move pods yet/);
    assert.deepEqual(codes(inspect('pod-infra')), ['POD_INFRA']);
  });

  it('refuses a container sharing another container’s network outside a pod', () => {
    const info = { ...inspect('tmpfs'), networkMode: 'container:7aaaf807826158f3f6914908adb71e4e6853a668467e771dab80cc3dd1ef20a6' };
    assert.deepEqual(codes(info), ['SHARED_NAMESPACE']);
    assert.deepEqual(codes({ ...inspect('tmpfs'), dependencies: ['abc'] }), ['SHARED_NAMESPACE']);
  });

  it('refuses kept TCP connections unless the address moves with the container', () => {
    assert.deepEqual(codes(inspect('tmpfs'), { tcpEstablished: true }), ['TCP_WITHOUT_ADDRESS']);
    assert.deepEqual(codes(inspect('tmpfs'), { tcpEstablished: true, keepAddress: true }), []);
    assert.deepEqual(codes(inspect('host-network'), { tcpEstablished: true, keepAddress: true }), ['TCP_WITHOUT_ADDRESS']);
    assert.match(movabilityProblems(inspect('host-network'), cfg({ tcpEstablished: true, keepAddress: true }))[0].message, /--network host/);
    assert.deepEqual(codes({ ...inspect('tmpfs'), networkMode: 'none' }, { tcpEstablished: true }), [], 'no network, no connections');
  });

  it('lists every problem, and refuses mount kinds it does not know', () => {
    const info = { ...inspect('volume'), mounts: [...inspect('volume').mounts, ...inspect('bind').mounts, { type: 'image', source: '', destination: '/img', volumeName: '', readOnly: true }] };
    assert.deepEqual(codes(info, { tcpEstablished: true }), ['BIND_MOUNT_NOT_SHARED', 'MOUNT_UNSUPPORTED', 'TCP_WITHOUT_ADDRESS']);
  });
});

describe('checkpoint.sharedMounts', () => {
  const hosts = [{ name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' } }];
  it('defaults to none and takes absolute paths only', () => {
    assert.deepEqual(loadConfig({ overrides: { hosts }, env: {} }).checkpoint.sharedMounts, []);
    assert.deepEqual(loadConfig({ overrides: { hosts, checkpoint: { sharedMounts: ['/srv/nfs'] } }, env: {} }).checkpoint.sharedMounts, ['/srv/nfs']);
    assert.throws(() => loadConfig({ overrides: { hosts, checkpoint: { sharedMounts: ['srv'] } }, env: {} }), /checkpoint\.sharedMounts: "srv" is not an absolute path/);
    assert.throws(() => loadConfig({ overrides: { hosts, checkpoint: { sharedMounts: 5 } }, env: {} }), /checkpoint\.sharedMounts: must be an array/);
  });
});

describe('podman volume inspect', () => {
  it('reads a plain local volume and one with driver options (recorded output of podman 4.3)', () => {
    const plain = parseVolumeInspect(
      '[{"Name":"vt","Driver":"local","Mountpoint":"/var/lib/containers/storage/volumes/vt/_data","CreatedAt":"2026-12-01T10:56:53.930518206Z","Labels":{},"Scope":"local","Options":{},"MountCount":0,"NeedsCopyUp":true,"NeedsChown":true}]',
    );
    assert.deepEqual(plain, { name: 'vt', driver: 'local', mountpoint: '/var/lib/containers/storage/volumes/vt/_data', labels: {}, options: {} });
    const withOpts = parseVolumeInspect('[{"Name":"vo","Driver":"local","Mountpoint":"/var/lib/containers/storage/volumes/vo/_data","Labels":{"ferry.migration":"m-1"},"Scope":"local","Options":{"device":"tmpfs","type":"tmpfs"}}]');
    assert.deepEqual(withOpts.options, { device: 'tmpfs', type: 'tmpfs' });
    assert.equal(withOpts.labels['ferry.migration'], 'm-1');
  });
});
