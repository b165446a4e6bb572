import { strict as assert } from 'node:assert';
import { parsePlan } from '../../src/fleet/planFile';

describe('plan files', () => {
  it('reads JSON lists, JSON objects and YAML', () => {
    assert.equal(parsePlan('[{"container":"w","from":"a","to":"b"}]').entries.length, 1);
    const o = parsePlan('{"maxParallel":2,"migrations":[{"container":"w","from":"a","to":"b","probe":"tcp:80"}]}');
    assert.equal(o.maxParallel, 2);
    assert.deepEqual(o.entries[0].probe, { kind: 'tcp', port: 80 });
    const y = parsePlan('perHost: 1\nmigrations:\n  - {container: w1, from: a, to: b}\n  - container: w2\n    from: a\n    to: c\n');
    assert.deepEqual(
      y.entries.map((e) => e.to),
      ['b', 'c'],
    );
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

  it('names the field and shows the value', () => {
    const cases: [string, RegExp][] = [
      ['[{"container":"w","from":"a","to":"b c"}]', /^plan p entry 1: invalid host name "b c": .* \(field "to"\)$/],
      ['[{"container":"w","from":"a","to":"b","probe":5}]', /^plan p entry 1: must be a probe spec \(a string\), got 5 \(field "probe"\)$/],
      ['[{"container":"w","from":"a","to":"b","probe":"tcp:99999"}]', /^plan p entry 1: health probe "tcp:99999": "99999" is not a port number .*\(field "probe"\)$/],
      ['["a->c"]', /^plan p entry 1: must be an object \{container, from, to\}, got "a->c"$/],
      ['{"migrations":[{"container":"w","from":"a","to":"b"}],"perHost":1.5}', /^plan p: perHost must be an integer from 1 to 1000, got 1\.5$/],
      ['[{"container":"w","from":"a","to":"a"}]', /^plan p entry 1: source and destination are the same host \("a"\)/],
    ];
    for (const [text, re] of cases)
      assert.throws(
        () => parsePlan(text, 'p'),
        (e: unknown) => re.test((e as Error).message),
        text,
      );
  });

  it('checks every entry, hosts included, before anything runs', () => {
    const entries = Array.from({ length: 9 }, (_, i) => ({ container: `w${i}`, from: 'a', to: i === 6 ? 'bb' : 'b' }));
    assert.throws(
      () => parsePlan(JSON.stringify(entries), 'p', ['a', 'b', 'c']),
      (e: unknown) => (e as Error).message === 'plan p entry 7: unknown host "bb": the inventory has a, b, c (field "to")',
    );
    assert.equal(parsePlan(JSON.stringify(entries), 'p').entries.length, 9, 'without an inventory, hosts are only checked as names');
    // Several bad entries: all of them are named (the first five, then a count).
    const bad = Array.from({ length: 8 }, (_, i) => ({ container: `w ${i}`, from: 'a', to: 'b' }));
    assert.throws(
      () => parsePlan(JSON.stringify(bad), 'p'),
      (e: unknown) => {
        const m = (e as Error).message;
        return m.includes('entry 1: invalid container name "w 0"') && m.includes('entry 5: invalid container name "w 4"') && m.endsWith('; and 3 more');
      },
    );
  });
});
