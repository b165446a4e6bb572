import { strict as assert } from 'node:assert';
import { parseStepJob, stepJobId } from '../../jobs/stepJob';
import { ValidationError } from '../../src/errors';

describe('step job payloads', () => {
  it('accepts a well-formed payload', () => {
    assert.deepEqual(parseStepJob({ migrationId: 'm-lq2x3y4z-0123abcd', step: 'transfer' }), { migrationId: 'm-lq2x3y4z-0123abcd', step: 'transfer' });
    assert.equal(stepJobId('m-1-0123abcd', 'restore'), 'm-1-0123abcd.restore');
  });

  it('rejects anything else with a clear message', () => {
    const bad: unknown[] = [
      null,
      'x',
      42,
      [],
      {},
      { migrationId: 'm-1-0123abcd' },
      { migrationId: '../../etc', step: 'preflight' },
      { migrationId: 'm-1-0123abcd', step: 'rm -rf' },
      { migrationId: 'm-1-0123abcd', step: 'preflight', cmd: 'x' },
    ];
    for (const b of bad)
      assert.throws(
        () => parseStepJob(b),
        (e: unknown) => e instanceof ValidationError && (e as Error).message.includes('malformed job payload'),
      );
  });

  it('names the field and the value', () => {
    const cases: [unknown, RegExp][] = [
      [[1, 2], /^malformed job payload: must be an object \{migrationId, step\}, got \[1,2\]$/],
      [{ migrationId: '../../etc', step: 'preflight' }, /^malformed job payload: migrationId: must be a Ferry migration id .*, got "\.\.\/\.\.\/etc"$/],
      [{ migrationId: 'm-1-0123abcd', step: 'rm -rf' }, /^malformed job payload: step: must be one of preflight, .*rollback, got "rm -rf"$/],
      [{ migrationId: 'm-1-0123abcd', step: 'preflight', cmd: 'x' }, /^malformed job payload: cmd: unknown key \(allowed: migrationId, step\)$/],
      [{ migrationId: 'm-1-0123abcd' }, /^malformed job payload: step: must be one of .*, got nothing$/],
    ];
    for (const [data, re] of cases)
      assert.throws(
        () => parseStepJob(data),
        (e: unknown) => re.test((e as Error).message),
        String(re),
      );
  });
});
