import { strict as assert } from 'node:assert';
import { checkContainerName, checkHostName } from '../../src/names';
import { ValidationError } from '../../src/errors';

describe('name validation', () => {
  it('accepts podman-style names', () => {
    for (const n of ['web', 'web-1', 'a.b_c', '0x', 'W'.repeat(128)]) assert.equal(checkContainerName(n), n);
    assert.equal(checkHostName('node-01.rack2'), 'node-01.rack2');
  });

  it('rejects shell metacharacters, traversal, white space and non-strings, naming the value', () => {
    const bad: unknown[] = ['web; touch /tmp/pwned', '$(id)', '`id`', 'a|b', 'a&b', '../etc', '/abs', 'a b', '-rf', '.hidden', '', 'x'.repeat(129), 'ünï', 'a\nb', null, 42, {}, ['web']];
    for (const n of bad) {
      assert.throws(
        () => checkContainerName(n),
        (e: unknown) => e instanceof ValidationError && (e as Error).message.includes('invalid container name'),
      );
    }
    assert.throws(() => checkHostName('b;reboot'), /invalid host name "b;reboot"/);
  });
});
