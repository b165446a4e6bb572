import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { knownHostsName, parseKnownHosts, verifyHostKey } from '../../src/ssh/knownHosts';

const KEY_A = 'AAAAC3NzaC1lZDI1NTE5AAAAIHb3mVY1eYGm0pH0uqfUMl9F1mbc4r4Y3CxbN7f3Hn5q';
const KEY_B = 'AAAAC3NzaC1lZDI1NTE5AAAAIJk2c0mQy0z8m2pYd8m0bqk4KXq9Qd0G8eE0l9fZ8f2R';

function hashed(name: string): string {
  const salt = Buffer.from('0123456789abcdef0123');
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts verification', () => {
  const text = [
    '# comment',
    `198.18.0.11 ssh-ed25519 ${KEY_A}`,
    `[198.18.0.12]:2222,other ssh-ed25519 ${KEY_B}`,
    `${hashed('198.18.0.13')} ssh-ed25519 ${KEY_A}`,
    `@revoked 198.18.0.14 ssh-ed25519 ${KEY_B}`,
    `198.18.0.14 ssh-ed25519 ${KEY_B}`,
  ].join('\n');
  const entries = parseKnownHosts(text);

  it('accepts the recorded key, plain, with port, and hashed', () => {
    assert.deepEqual(verifyHostKey(entries, '198.18.0.11', Buffer.from(KEY_A, 'base64')), { ok: true });
    assert.deepEqual(verifyHostKey(entries, knownHostsName('198.18.0.12', 2222), Buffer.from(KEY_B, 'base64')), { ok: true });
    assert.deepEqual(verifyHostKey(entries, '198.18.0.13', Buffer.from(KEY_A, 'base64')), { ok: true });
  });

  it('tells a changed key from an unknown host, and honours @revoked', () => {
    assert.deepEqual(verifyHostKey(entries, '198.18.0.11', Buffer.from(KEY_B, 'base64')), { ok: false, reason: 'changed' });
    assert.deepEqual(verifyHostKey(entries, '198.18.0.99', Buffer.from(KEY_A, 'base64')), { ok: false, reason: 'unknown' });
    assert.deepEqual(verifyHostKey(entries, '198.18.0.12', Buffer.from(KEY_B, 'base64')), { ok: false, reason: 'unknown' }, 'port 22 is not port 2222');
    assert.deepEqual(verifyHostKey(entries, '198.18.0.14', Buffer.from(KEY_B, 'base64')), { ok: false, reason: 'revoked' });
  });
});
