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
      assert.throws(() => loadConfig({ file: file(content), env: {} }), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), `expected ${re}`);
    }
    assert.throws(() => loadConfig({ file: join(dir, 'missing.json'), env: {} }), /cannot read config file/);
  });

  it('hides secrets when printing', () => {
    const c = loadConfig({ file: file({ redis: { url: 'redis://u:pw@h:1', password: 's3cret' }, hosts: [host] }), env: {} });
    const text = JSON.stringify(redactConfig(c));
    assert.ok(!text.includes('s3cret') && !text.includes(':pw@'), text);
  });
});
