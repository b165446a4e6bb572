import { strict as assert } from 'node:assert';
import { FORWARD_STEPS, hostForStep, nextStep, onStepExhausted, overallPercent, STEP_TABLE } from '../../src/engine/steps';

describe('migration plan', () => {
  const rec = { from: 'a', to: 'b' };

  it('runs restore and verify on the destination, everything else on the source', () => {
    assert.deepEqual(
      FORWARD_STEPS.map((s) => hostForStep(rec, s)),
      ['a', 'a', 'a', 'b', 'b', 'a', 'a'],
    );
    assert.equal(hostForStep(rec, 'rollback'), 'a');
  });

  it('chains the steps and ends after cleanup', () => {
    assert.equal(nextStep('preflight'), 'checkpoint');
    assert.equal(nextStep('verify'), 'cutover');
    assert.equal(nextStep('cutover'), 'cleanup');
    assert.equal(nextStep('cleanup'), undefined);
    assert.equal(nextStep('rollback'), undefined);
  });

  it('rolls back whatever fails once the container may be frozen, and only then', () => {
    assert.equal(onStepExhausted('preflight'), 'fail');
    for (const s of ['checkpoint', 'transfer', 'restore', 'verify', 'cutover'] as const) assert.equal(onStepExhausted(s), 'rollback');
    assert.equal(onStepExhausted('cleanup'), 'needs-attention');
    assert.equal(onStepExhausted('rollback'), 'needs-attention');
  });

  it('reports an overall percentage that only grows along the chain', () => {
    let last = -1;
    for (const s of FORWARD_STEPS) {
      for (const p of [0, 50, 100]) {
        const v = overallPercent(s, p);
        assert.ok(v >= last, `${s} ${p}: ${v} < ${last}`);
        last = v;
      }
    }
    assert.equal(overallPercent('cleanup', 100), 100);
  });

  it('gives the forward steps weights that add up to 100', () => {
    assert.equal(
      FORWARD_STEPS.reduce((sum, s) => sum + STEP_TABLE[s].weight, 0),
      100,
    );
  });
});
