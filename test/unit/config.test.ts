import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, redactConfig } from '../../src/config/load';
import { ConfigError } from '../../src/errors';

const dir = mkdtempSync(join(tmpdir(), 'ferry-config-test-'));
function file(content: unknown): string {
  const p = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}
const host = { name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' } };

describe('configuration', () => {
  it('fills defaults for a minimal inventory', () => {
    const c = loadConfig({ file: file({ hosts: [host] }), env: {} });
    assert.equal(c.hosts[0].ssh.port, 22);
    assert.equal(c.hosts[0].ssh.user, 'root');
    assert.deepEqual(c.hosts[0].podman, ['podman']);
    assert.equal(c.checkpoint.compression, 'zstd');
  });

  // Cold read of a67bf0b: the post-copy deadline was checked against verify's time limit for
  // every installation, so a plain one with a short verify limit no longer loaded.
  it('checks the post-copy deadline against verify only where post-copy is the default', () => {
    const short = { timeouts: { step: { verify: 60_000 } } };
    assert.equal(loadConfig({ file: file({ ...short, hosts: [host] }), env: {} }).timeouts.step.verify, 60_000);
    assert.throws(() => loadConfig({ file: file({ ...short, checkpoint: { memoryCopy: 'post-copy' }, hosts: [host] }), env: {} }), /checkpoint.postCopyDeadlineSeconds \(90 s\) must be shorter than timeouts.step.verify \(60000 ms\)/);
  });

  it('lets the environment override the file', () => {
    const c = loadConfig({ file: file({ hosts: [host] }), env: { FERRY_REDIS_URL: 'redis://10.0.0.1:7000', FERRY_RETRY_ATTEMPTS_TRANSFER: '9' } });
    assert.equal(c.redis.url, 'redis://10.0.0.1:7000');
    assert.equal(c.retry.attempts.transfer, 9);
  });

  it('names the bad key in every malformed case', () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [[1, 2], /must hold a JSON object/],
      [{ redis: { urll: 'x' } }, /redis\.urll/],
      [{ checkpoint: { compression: 'lz4' } }, /checkpoint\.compression/],
      [{ hosts: [{ ...host, sshh: {} }] }, /hosts\[0\] \(a\)\.sshh: unknown key/],
      [{ hosts: [{ ...host, ssh: { privateKey: 'relative/key' } }] }, /ssh\.privateKey: must be an absolute path/],
      [{ hosts: [{ ...host, name: 'a;b' }] }, /hosts\[0\]\.name/],
      [{ hosts: [host, host] }, /appears twice/],
      [{ hosts: [{ ...host, ssh: { privateKey: '/k', port: 70000 } }] }, /ssh\.port: must be an integer/],
      [{ retry: { attempts: { transfer: -1 } } }, /retry\.attempts\.transfer/],
    ];
    for (const [content, re] of cases) {
      assert.throws(
        () => loadConfig({ file: file(content), env: {} }),
        (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
        `expected ${re}`,
      );
    }
    assert.throws(() => loadConfig({ file: join(dir, 'missing.json'), env: {} }), /cannot read config file/);
  });

  it('shows the value found next to the path', () => {
    const cases: [unknown, RegExp][] = [
      [{ hosts: [{ ...host, ssh: { privateKey: '/k', port: 70000 } }] }, /hosts\[0\] \(a\)\.ssh\.port: must be an integer from 1 to 65535, got 70000/],
      [{ hosts: [{ ...host, ssh: { privateKey: '/k', port: '22' } }] }, /ssh\.port: must be an integer from 1 to 65535, got "22"/],
      [{ hosts: [{ ...host, workDir: '/var/lib\n/x' }] }, /hosts\[0\] \(a\)\.workDir: must not contain NUL or line breaks, got "\/var\/lib\\n\/x"/],
      [{ hosts: [{ ...host, podman: ['podman', 3] }] }, /hosts\[0\] \(a\)\.podman\[1\]: must be a non-empty string, got 3/],
      [{ hosts: [{ name: 'b', ssh: { privateKey: '/k' } }] }, /hosts\[0\] \(b\)\.address: must be a non-empty string, got nothing/],
      [{ hosts: ['a'] }, /hosts\[0\]: must be an object, got "a"/],
      [{ hosts: [host, host] }, /hosts\[1\] \(a\)\.name: appears twice \(hosts\[0\] has it too\)/],
    ];
    for (const [content, re] of cases) {
      assert.throws(
        () => loadConfig({ file: file(content), env: {} }),
        (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
        `expected ${re}`,
      );
    }
  });

  it('names every bad field of the inventory at once', () => {
    const content = { hosts: [{ ...host, address: '1.2.3.4 -oProxyCommand=x', capacity: { containers: -1 } }] };
    assert.throws(
      () => loadConfig({ file: file(content), env: {} }),
      (e: unknown) => /address: must not contain white space.*; .*capacity\.containers: must be an integer from 0 to 100000, got -1/.test((e as Error).message),
    );
  });

  it('hides secrets when printing', () => {
    const c = loadConfig({ file: file({ redis: { url: 'redis://u:pw@h:1', password: 's3cret' }, hosts: [host] }), env: {} });
    const text = JSON.stringify(redactConfig(c));
    assert.ok(!text.includes('s3cret') && !text.includes(':pw@'), text);
  });
});
