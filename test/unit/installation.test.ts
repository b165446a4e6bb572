import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { installationIdOf } from '../../src/engine/installation';

const dir = mkdtempSync(join(tmpdir(), 'ferry-installation-test-'));
const host = { name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' } };

function idFor(redis: Record<string, unknown>): string {
  const p = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify({ redis, hosts: [host] }));
  return installationIdOf(loadConfig({ file: p, env: {} }));
}

/** Finding 12: what makes two workers one installation, or two (docs/reliability.md). */
describe('installation id', () => {
  it('differs with the prefix or the Redis, not with credentials or how the URL is spelled', () => {
    const base = idFor({ url: 'redis://10.0.0.1:6379', prefix: 'ferry' });
    assert.match(base, /^i-[0-9a-f]{16}$/);
    assert.equal(idFor({ url: 'redis://user:secret@10.0.0.1', prefix: 'ferry', password: 'x' }), base);
    assert.equal(idFor({ url: 'redis://10.0.0.1:6379/0', prefix: 'ferry' }), base);
    assert.notEqual(idFor({ url: 'redis://10.0.0.1:6379', prefix: 'other' }), base);
    assert.notEqual(idFor({ url: 'redis://10.0.0.2:6379', prefix: 'ferry' }), base);
    assert.notEqual(idFor({ url: 'redis://10.0.0.1:6379/2', prefix: 'ferry' }), base);
  });

  it('names a Sentinel group by its name, not by the sentinels it is reached through', () => {
    const one = idFor({ prefix: 'ferry', sentinel: { name: 'main', sentinels: ['10.0.0.1:26379'] } });
    assert.equal(idFor({ prefix: 'ferry', sentinel: { name: 'main', sentinels: ['10.0.0.2:26379', '10.0.0.3:26379'] } }), one);
    assert.notEqual(idFor({ prefix: 'ferry', sentinel: { name: 'other', sentinels: ['10.0.0.1:26379'] } }), one);
  });
});
