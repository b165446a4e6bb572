import { strict as assert } from 'node:assert';
import { parseStepJob, stepJobId } from '../../jobs/stepJob';
import { ValidationError } from '../../src/errors';

describe('step job payloads', () => {
  it('accepts a well-formed payload', () => {
    assert.deepEqual(parseStepJob({ migrationId: 'm-lq2x3y4z-0123abcd', step: 'transfer' }), { migrationId: 'm-lq2x3y4z-0123abcd', step: 'transfer' });
    assert.equal(stepJobId('m-1-0123abcd', 'restore'), 'm-1-0123abcd.restore');
  });

  it('rejects anything else with a clear message', () => {
    const bad: unknown[] = [null, 'x', 42, [], {}, { migrationId: 'm-1-0123abcd' }, { migrationId: '../../etc', step: 'preflight' }, { migrationId: 'm-1-0123abcd', step: 'rm -rf' }, { migrationId: 'm-1-0123abcd', step: 'preflight', cmd: 'x' }];
    for (const b of bad) assert.throws(() => parseStepJob(b), (e: unknown) => e instanceof ValidationError && /malformed job payload/.test((e as Error).message));
  });
});
