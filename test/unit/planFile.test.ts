import { strict as assert } from 'node:assert';
import { parsePlan } from '../../src/fleet/planFile';

describe('plan files', () => {
  it('reads JSON lists, JSON objects and YAML', () => {
    assert.equal(parsePlan('[{"container":"w","from":"a","to":"b"}]').entries.length, 1);
    const o = parsePlan('{"maxParallel":2,"migrations":[{"container":"w","from":"a","to":"b","probe":"tcp:80"}]}');
    assert.equal(o.maxParallel, 2);
    assert.deepEqual(o.entries[0].probe, { kind: 'tcp', port: 80 });
    const y = parsePlan('perHost: 1\nmigrations:\n  - {container: w1, from: a, to: b}\n  - container: w2\n    from: a\n    to: c\n');
    assert.deepEqual(y.entries.map((e) => e.to), ['b', 'c']);
    assert.equal(y.perHost, 1);
  });

  it('rejects bad plans naming the entry and the problem', () => {
    const cases: [string, RegExp][] = [
      ['{', /neither valid JSON nor YAML/],
      ['[]', /non-empty list/],
      ['[{"container":"w; rm -rf /","from":"a","to":"b"}]', /entry 1: invalid container name/],
      ['[{"container":"w","from":"a"}]', /entry 1: invalid host name/],
      ['[{"container":"w","from":"a","to":"b","x":1}]', /entry 1: unknown key "x"/],
      ['[{"container":"w","from":"a","to":"b"},{"container":"w","from":"a","to":"c"}]', /entry 2: container "w" on a appears twice/],
      ['{"migrations":[{"container":"w","from":"a","to":"b"}],"maxParallel":0}', /maxParallel must be an integer/],
      ['{"migrations":[{"container":"w","from":"a","to":"b"}],"extra":1}', /unknown key "extra"/],
      ['"just a string"', /must be a list/],
    ];
    for (const [text, re] of cases) assert.throws(() => parsePlan(text), re, text);
  });
});
