import { strict as assert } from 'node:assert';
import { InvalidArgumentError } from 'commander';
import { main } from '../../src/cli/main';
import { intOption } from '../../src/cli/options';

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const io = { out: (s: string) => (out += `${s}\n`), err: (s: string) => (out += `${s}\n`) };
  const code = await main(['node', 'ferry', ...args], io);
  return { code, out };
}

describe('numeric CLI options', () => {
  it('takes whole numbers in range and nothing else', () => {
    const parse = intOption(1, 1000);
    assert.equal(parse('1'), 1);
    assert.equal(parse('1000'), 1000);
    for (const bad of ['abc', '', '0', '1001', '-1', '1.5', '1e3', ' 5', '0x10', '99999999999999999999']) {
      assert.throws(
        () => parse(bad),
        (e: unknown) => e instanceof InvalidArgumentError && (e as Error).message.includes('whole number from 1 to 1000'),
        JSON.stringify(bad),
      );
    }
    assert.equal(intOption(0, 65535)('0'), 0);
  });

  // Refused while the arguments are parsed: before any config is read or Redis is reached.
  it('exits 2 naming the option and the value, for every numeric option', async () => {
    const cases: string[][] = [
      ['migrate', 'web', '--from', 'a', '--to', 'b', '--wait', '--timeout', 'abc'],
      ['status', '--limit', 'abc'],
      ['history', '--limit', '0'],
      ['batch', 'plan.json', '--max-parallel', '0'],
      ['batch', 'plan.json', '--per-host', 'abc'],
      ['drain', 'a', '--max-parallel', '1001'],
      ['drain', 'a', '--per-host', '-3'],
      ['dashboard', '--port', '70000'],
      ['dashboard', '--port', 'abc'],
    ];
    for (const args of cases) {
      const option = args[args.length - 2];
      const value = args[args.length - 1];
      const r = await cli(['--config', '/nonexistent/ferry.json', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.out}`);
      assert.match(r.out, new RegExp(`option '${option} <[a-z]+>' argument '${value}' is invalid\\. Use a whole number from \\d+ to \\d+\\.`), args.join(' '));
    }
  });
});
