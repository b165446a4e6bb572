import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criuConfigLines, criuWrapper } from '../../src/podman/criuConfig';

describe('criuConfig: CRIU options for one podman command', () => {
  it('skips in-flight connections and closes established ones unless they are kept', () => {
    assert.deepEqual(criuConfigLines('checkpoint', { skipInFlight: true, tcpEstablished: false }), ['skip-in-flight', 'tcp-close', 'network-lock skip']);
    assert.deepEqual(criuConfigLines('restore', { skipInFlight: true, tcpEstablished: false }), ['tcp-close']);
    assert.deepEqual(criuConfigLines('checkpoint', { skipInFlight: true, tcpEstablished: true }), ['skip-in-flight']);
    assert.deepEqual(criuConfigLines('restore', { skipInFlight: true, tcpEstablished: true }), []);
    assert.deepEqual(criuConfigLines('checkpoint', { skipInFlight: false, tcpEstablished: false }), []);
    assert.deepEqual(criuConfigLines('restore', { tcpEstablished: false }), []);
    assert.equal(criuWrapper([]), null);
  });

  it('installs a script that runs criu with its config file, once per content', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-criu-'));
    try {
      const bin = join(dir, 'bin');
      const w = criuWrapper(['skip-in-flight', 'tcp-close'], join(dir, 'criu'));
      assert.ok(w);
      assert.deepEqual(w.podmanFlags, ['--runtime-flag', `criu=${w.path}`]);
      assert.equal(criuWrapper(['skip-in-flight', 'tcp-close'], join(dir, 'criu'))?.path, w.path, 'the same options, the same script');
      assert.notEqual(criuWrapper(['skip-in-flight'], join(dir, 'criu'))?.path, w.path);
      const [cmd, ...args] = w.install;
      for (let i = 0; i < 2; i++) {
        const r = spawnSync(cmd, args, { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      }
      assert.equal(statSync(w.path).mode & 0o777, 0o755);
      assert.match(readFileSync(`${w.path}.conf`, 'utf8'), /^skip-in-flight\ntcp-close\n$/m);
      // A stand-in for criu that shows what it was given.
      spawnSync('mkdir', ['-p', bin]);
      writeFileSync(join(bin, 'criu'), '#!/bin/sh\necho "$CRIU_CONFIG_FILE $*"\n');
      chmodSync(join(bin, 'criu'), 0o755);
      const run = spawnSync(w.path, ['swrk', '3'], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
      assert.equal(run.stdout.trim(), `${w.path}.conf swrk 3`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
