import { strict as assert } from 'node:assert';
import { abortable, CommandResult, CommandRunner } from '../../src/exec/runner';
import { checkCriu } from '../../src/steps/criu';

function countingRunner(where: string): CommandRunner & { calls: string[] } {
  const calls: string[] = [];
  return {
    where,
    calls,
    run(argv): Promise<CommandResult> {
      calls.push(argv.join(' '));
      return Promise.resolve({ code: 0, stdout: argv[1] === '--version' ? 'Version: 4.2.1\n' : 'Looks good.\n', stderr: '' });
    },
  };
}

describe('CRIU self-check', () => {
  it('is remembered per host across step attempts, each of which wraps the runner anew', async () => {
    // A place no other test uses: the pass is remembered for the whole process.
    const runner = countingRunner(`host criu-cache-${process.pid} (local)`);
    for (let attempt = 0; attempt < 3; attempt++) {
      assert.equal(await checkCriu(abortable(runner, new AbortController().signal)), '4.2.1');
    }
    assert.deepEqual(runner.calls, ['criu check', 'criu --version']);
  });

  it('does not remember a failure', async () => {
    const runner = countingRunner(`host criu-fail-${process.pid} (local)`);
    const failing: CommandRunner = { where: runner.where, run: () => Promise.resolve({ code: 1, stdout: '', stderr: 'Error: no uffd\n' }) };
    await assert.rejects(checkCriu(failing), /CRIU is not usable/);
    assert.equal(await checkCriu(runner), '4.2.1');
    assert.deepEqual(runner.calls, ['criu check', 'criu --version']);
  });
});
