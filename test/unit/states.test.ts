import { strict as assert } from 'node:assert';
import { ACTIVE_STATES, categoryOf, endsOn, FAILURE_STATES, MIGRATION_STATES, RETRYABLE_STATES, STATE_VOCABULARY, TERMINAL_STATES } from '../../src/engine/states';
import { batchCounts } from '../../src/fleet/model';
import type { MigrationRecord, MigrationState } from '../../src/engine/model';

describe('migration states', () => {
  it('groups the states as the views always did', () => {
    assert.deepEqual(
      MIGRATION_STATES.map((s) => `${s}:${categoryOf(s)}`),
      ['queued:queued', 'running:running', 'rolling-back:running', 'succeeded:done', 'failed:failed', 'failed-rolled-back:failed', 'needs-attention:failed', 'cancelled:failed'],
    );
  });

  it('ends in five states, in the order the metrics list them', () => {
    assert.deepEqual([...TERMINAL_STATES], ['succeeded', 'failed', 'failed-rolled-back', 'needs-attention', 'cancelled']);
    assert.deepEqual([...ACTIVE_STATES], ['queued', 'running', 'rolling-back']);
    assert.deepEqual([...FAILURE_STATES], ['failed', 'failed-rolled-back', 'needs-attention', 'cancelled']);
    for (const s of MIGRATION_STATES) assert.equal(TERMINAL_STATES.has(s), !ACTIVE_STATES.has(s), s);
  });

  it('offers a retry only where the container is known to be on the source', () => {
    assert.deepEqual([...RETRYABLE_STATES], ['failed', 'failed-rolled-back', 'cancelled']);
    assert.equal(endsOn('succeeded'), 'destination');
    assert.equal(endsOn('needs-attention'), 'unknown');
    assert.equal(endsOn('running'), undefined);
  });

  it('sends the same vocabulary to the browser, as plain JSON', () => {
    const v = JSON.parse(JSON.stringify(STATE_VOCABULARY)) as typeof STATE_VOCABULARY;
    assert.deepEqual(v.categories, ['running', 'queued', 'done', 'failed']);
    assert.deepEqual(Object.keys(v.states), MIGRATION_STATES);
    for (const s of MIGRATION_STATES) assert.deepEqual(v.states[s], { category: categoryOf(s), terminal: TERMINAL_STATES.has(s), retryable: RETRYABLE_STATES.has(s) });
  });

  it('counts a batch by category; an item not submitted yet is remaining', () => {
    const rec = (state: MigrationState, bytes?: number) => ({ state, bytesTransferred: bytes }) as MigrationRecord;
    const counts = batchCounts([null, undefined, rec('queued'), rec('running'), rec('rolling-back', 5), rec('succeeded', 100), rec('failed'), rec('needs-attention'), rec('cancelled')]);
    assert.deepEqual(counts, { done: 1, failed: 3, running: 2, remaining: 3, bytes: 105 });
  });
});
