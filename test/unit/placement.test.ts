import { strict as assert } from 'node:assert';
import type { ContainerFact } from '../../src/fleet/hostFacts';
import { parseContainers, parseSize } from '../../src/fleet/hostFacts';
import { Candidate, planDrain } from '../../src/fleet/placement';

const c = (name: string, memoryMb = 10, labels: Record<string, string> = {}, state = 'running'): ContainerFact => ({ name, id: name, state, labels, memoryMb });
const host = (name: string, containers = 0, cap = 10, memoryMb = 0, groups: Record<string, number> = {}): Candidate => ({ name, containers, memoryUsedMb: 0, capacity: { containers: cap, memoryMb }, groups });

describe('drain placement', () => {
  it('spreads containers over the least loaded hosts, within capacity', () => {
    const plan = planDrain([c('w1'), c('w2'), c('w3'), c('w4')], [host('b', 0, 3), host('c', 1, 3)]);
    assert.deepEqual(plan.unplaceable, []);
    const on = (h: string) => plan.moves.filter((m) => m.to === h).length;
    assert.equal(on('b') + on('c'), 4);
    assert.ok(on('b') <= 3 && on('c') + 1 <= 3, JSON.stringify(plan.moves));
  });

  it('honours labels: never move, stop instead, and replicas apart', () => {
    const plan = planDrain(
      [c('db', 10, { 'ferry.migrate': 'false' }), c('batch', 10, { 'ferry.on-drain': 'stop' }), c('r1', 10, { 'ferry.group': 'web' }), c('r2', 10, { 'ferry.group': 'web' }), c('gone', 10, {}, 'exited')],
      [host('b'), host('c')],
    );
    assert.deepEqual(
      plan.skip.map((s) => s.container),
      ['db'],
    );
    assert.deepEqual(plan.stop, ['batch']);
    const r = plan.moves.filter((m) => m.container.startsWith('r'));
    assert.equal(r.length, 2);
    assert.notEqual(r[0].to, r[1].to, 'replicas of one group land on different hosts');
    assert.ok(!plan.moves.some((m) => m.container === 'gone'), 'only running containers move');
  });

  it('names every container that has no room, and why', () => {
    const plan = planDrain([c('big', 900), c('small', 10), c('r1', 1, { 'ferry.group': 'g' })], [host('b', 0, 10, 500, { g: 1 })]);
    assert.deepEqual(plan.unplaceable.map((u) => u.container).sort(), ['big', 'r1']);
    assert.match(plan.unplaceable.find((u) => u.container === 'big')!.reason, /lacks memory/);
    assert.match(plan.unplaceable.find((u) => u.container === 'r1')!.reason, /replica of group g/);
  });

  it('never splits a pod: every member and the infra container are kept, with the reason', () => {
    const pod = {
      id: 'p1',
      name: 'shop',
      infraId: 'inf',
      members: [
        { id: 'm1', name: 'shop-web' },
        { id: 'm2', name: 'shop-db' },
        { id: 'inf', name: 'p1-infra' },
      ],
    };
    const members = [c('shop-web'), c('shop-db'), { ...c('p1-infra'), id: 'inf' }, c('lone')];
    members[0].id = 'm1';
    members[1].id = 'm2';
    const plan = planDrain(members, [host('b'), host('c'), host('d')], [pod]);
    assert.deepEqual(
      plan.moves.map((m) => m.container),
      ['lone'],
    );
    assert.deepEqual(plan.skip, [
      { container: 'shop-web', reason: 'pod member (Ferry cannot move pods yet): pod shop' },
      { container: 'shop-db', reason: 'pod member (Ferry cannot move pods yet): pod shop' },
      { container: 'p1-infra', reason: 'infra container of pod shop (Ferry cannot move pods yet)' },
    ]);
    assert.deepEqual(plan.unplaceable, []);
  });

  it('stops a pod member labelled to stop, but never its infra container', () => {
    const pod = {
      id: 'p1',
      name: 'shop',
      infraId: 'inf',
      members: [
        { id: 'm1', name: 'shop-web' },
        { id: 'inf', name: 'p1-infra' },
      ],
    };
    const plan = planDrain([c('shop-web', 10, { 'ferry.on-drain': 'stop' }), c('p1-infra', 10, { 'ferry.on-drain': 'stop' })], [host('b')], [pod]);
    assert.deepEqual(plan.stop, ['shop-web']);
    assert.deepEqual(
      plan.skip.map((s) => s.container),
      ['p1-infra'],
    );
    assert.deepEqual(plan.moves, []);
  });

  it('parses podman ps/stats output as recorded on the bed', () => {
    const ps = JSON.stringify([
      { Id: 'abc', Names: ['fx-p'], State: 'running', Labels: { 'ferry.group': 'g1' } },
      { Id: 'def', Names: ['old'], State: 'exited', Labels: null },
    ]);
    const stats = JSON.stringify([{ id: 'abc', name: 'fx-p', mem_usage: '2.474MB / 25.28GB' }]);
    assert.deepEqual(parseContainers(ps, stats), [
      { name: 'fx-p', id: 'abc', state: 'running', labels: { 'ferry.group': 'g1' }, memoryMb: 3 },
      { name: 'old', id: 'def', state: 'exited', labels: {}, memoryMb: 0 },
    ]);
    assert.equal(parseSize('25.28GB'), 25.28e9);
    assert.equal(parseSize('512kB'), 512e3);
    assert.equal(parseSize('0B'), 0);
  });
});
