import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { CommandResult, CommandRunner } from '../../src/exec/runner';
import { parseInspect } from '../../src/podman/parse';
import { Podman } from '../../src/podman/podman';
import { restoreFrozen } from '../../src/steps/recoverFrozen';

const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures');
const recorded = parseInspect(readFileSync(join(FIXTURES, 'inspect-httpd.json'), 'utf8'));
const info = { ...recorded, name: 'web', staticDir: `/var/lib/containers/storage/overlay-containers/${recorded.id}/userdata` };
const dir = mkdtempSync(join(tmpdir(), 'ferry-recover-test-'));

function config(checkpoint: Record<string, unknown> = {}) {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ hosts: [{ name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' } }], checkpoint }));
  return loadConfig({ file, env: {} });
}

// Recorded on the bed (podman 4.3.1, CNI): an in-place restore whose address another container holds.
const CNI_TAKEN = 'Error: plugin type="bridge" failed (add): cni plugin bridge failed: failed to allocate for range 0: requested IP address 10.88.0.4 is not available in range set 10.88.0.1-10.88.255.254\n';
// netavark's wording (podman 5), from its source.
const NETAVARK_TAKEN = 'Error: IPAM error: requested ip address 10.88.0.4 is already allocated to container ID 0123abcd\n';
const TRUNCATED = 'Error: failed to apply root file-system diff file /var/lib/containers/storage/…/rootfs-diff.tar: unexpected EOF\n';
const ok: CommandResult = { code: 0, stdout: '', stderr: '' };
const MID = 'm-test-0123abcd';

/**
 * podman and runc on one host, as a runner: runc holds nothing of the container, and each
 * `podman container restore` answers with the next of `restores`.
 */
function host(restores: CommandResult[]): { podman: Podman; runner: CommandRunner; restoreArgs: string[][]; removed: string[][] } {
  const restoreArgs: string[][] = [];
  const removed: string[][] = [];
  const runner: CommandRunner = {
    where: 'host a (local)',
    run(argv) {
      if (argv[0] === 'runc') return Promise.resolve({ code: 1, stdout: '', stderr: 'container does not exist' });
      if (argv[0] === 'test') return Promise.resolve({ code: 1, stdout: '', stderr: '' });
      if (argv[0] === 'rm') {
        removed.push([...argv]);
        return Promise.resolve(ok);
      }
      if (argv.includes('restore')) {
        restoreArgs.push([...argv]);
        return Promise.resolve(restores.shift() ?? { code: 99, stdout: '', stderr: 'unexpected restore' });
      }
      return Promise.resolve(ok);
    },
  };
  return { podman: new Podman(runner, ['podman']), runner, restoreArgs, removed };
}
const refused = (stderr: string): CommandResult => ({ code: 125, stdout: '', stderr });

describe('bringing a frozen container back in place (restoreFrozen)', () => {
  it('tries its own address again first: a lease it still held was freed by the refused attempt', async () => {
    const h = host([refused(CNI_TAKEN), ok]);
    const back = await restoreFrozen(h.podman, h.runner, info, config(), 60_000, MID);
    assert.deepEqual(back, { how: 'in place' });
    assert.equal(h.restoreArgs.length, 2);
    assert.ok(!h.restoreArgs.flat().includes('--ignore-static-ip'));
  });

  it('takes a new address, and says so, when another container holds its own (finding 13)', async () => {
    for (const taken of [CNI_TAKEN, NETAVARK_TAKEN]) {
      const h = host([refused(taken), refused(taken), ok]);
      const back = await restoreFrozen(h.podman, h.runner, info, config(), 60_000, MID);
      assert.match(back.how, /with a new IP address \(10\.88\.0\.4 was taken\)/);
      assert.match(back.warning ?? '', /came back with a new IP address: its own, 10\.88\.0\.4, had been given to another container/);
      assert.deepEqual(h.restoreArgs[2].slice(-3), ['--ignore-static-ip', '--ignore-static-mac', 'web']);
      assert.deepEqual(h.removed, [], 'the rootfs diff is not what was wrong');
    }
  });

  it('keeps the address when TCP connections are kept: it says what to free instead', async () => {
    const h = host([refused(CNI_TAKEN), refused(CNI_TAKEN), ok]);
    await assert.rejects(
      restoreFrozen(h.podman, h.runner, info, config({ tcpEstablished: true }), 60_000, MID),
      (e: Error & { code?: string }) => e.code === 'ADDRESS_TAKEN' && e.message.includes('10.88.0.4 was given to another container'),
    );
    assert.equal(h.restoreArgs.length, 2);
  });

  it('drops a truncated rootfs diff once, and repairs the address after it', async () => {
    const h = host([refused(TRUNCATED), refused(CNI_TAKEN), refused(CNI_TAKEN), ok]);
    const back = await restoreFrozen(h.podman, h.runner, info, config(), 60_000, MID);
    assert.match(back.how, /without the truncated rootfs diff, with a new IP address/);
    assert.equal(h.removed.length, 1);
    assert.match(h.removed[0].at(-1) ?? '', /rootfs-diff\.tar$/);
  });

  it('does not retry a restore its time limit killed, nor one that failed the same way twice', async () => {
    const killed = host([{ code: null, stdout: '', stderr: '(killed after 1000 ms time limit)' }, ok]);
    await assert.rejects(restoreFrozen(killed.podman, killed.runner, info, config(), 60_000, MID));
    assert.equal(killed.restoreArgs.length, 1);
    const broken = host([refused(TRUNCATED), refused(TRUNCATED), ok]);
    await assert.rejects(restoreFrozen(broken.podman, broken.runner, info, config(), 60_000, MID));
    assert.equal(broken.restoreArgs.length, 2);
  });
});
